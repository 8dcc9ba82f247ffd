-- How much of a payment settles which invoice.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('ops', 'payment_allocations', {
        'id': 'bigint',
        'company_id': 'bigint',
        'payment_id': 'bigint',
        'invoice_id': 'bigint',
        'amount_minor': 'bigint',
        'refund_id': 'bigint',
        'created_at': 'keep'
    }) }}
)

select
    id as payment_allocation_id,
    company_id,
    payment_id,
    invoice_id,
    amount_minor,
    refund_id,
    created_at
from source
