-- Stripe disputes.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('stripe', 'disputes', {
        'id': 'text',
        'account_id': 'text',
        'created': 'bigint',
        'livemode': 'bool',
        'amount': 'bigint',
        'currency': 'text',
        'charge': 'text',
        'payment_intent': 'text',
        'status': 'text',
        'reason': 'text'
    }) }}
)

select
    id as dispute_id,
    account_id,
    charge as charge_id,
    amount as amount_minor,
    upper(currency) as currency,
    status,
    reason,
    {{ epoch_to_timestamp('created') }} as created_at,
    {{ epoch_to_date('created') }} as created_on
from source
