-- One row per payment received; money stays integer minor units of the payment currency.
with source as (
    select * from {{ source('ops', 'payments') }}
)

select
    cast(id as bigint) as payment_id,
    cast(company_id as bigint) as company_id,
    cast(client_id as bigint) as client_id,
    method,
    currency,
    cast(amount_minor as bigint) as amount_minor,
    received_on,
    reference,
    stripe_payment_intent_id,
    stripe_charge_id,
    created_at,
    updated_at
from source
