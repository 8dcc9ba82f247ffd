-- Money given back on a payment; immutable.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('ops', 'refunds', {
        'id': 'bigint',
        'company_id': 'bigint',
        'payment_id': 'bigint',
        'currency': 'text',
        'amount_minor': 'bigint',
        'refunded_on': 'date',
        'reason': 'text',
        'stripe_refund_id': 'text',
        'created_at': 'keep'
    }) }}
)

select
    id as refund_id,
    company_id,
    payment_id,
    upper(currency) as currency,
    amount_minor,
    refunded_on,
    reason,
    stripe_refund_id,
    created_at
from source
