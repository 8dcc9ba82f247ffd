-- One row per client of a company; dlt bookkeeping columns dropped.
with source as (
    select * from {{ source('ops', 'clients') }}
)

select
    cast(id as bigint) as client_id,
    cast(company_id as bigint) as company_id,
    name,
    email,
    currency,
    stripe_customer_id,
    deleted_at,
    created_at,
    updated_at
from source
