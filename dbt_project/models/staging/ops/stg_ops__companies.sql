-- One row per company (tenant); dlt bookkeeping columns dropped.
with source as (
    select * from {{ source('ops', 'companies') }}
)

select
    cast(id as bigint) as company_id,
    slug,
    name,
    base_currency,
    fiscal_year_start_month,
    invoice_number_format,
    invoice_prefix,
    payment_terms_days,
    plan,
    stripe_account_id,
    created_at,
    updated_at
from source
