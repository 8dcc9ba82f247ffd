-- Stripe payment intents.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('stripe', 'payment_intents', {
        'id': 'text',
        'account_id': 'text',
        'created': 'bigint',
        'livemode': 'bool',
        'amount': 'bigint',
        'amount_received': 'bigint',
        'currency': 'text',
        'customer': 'text',
        'latest_charge': 'text',
        'status': 'text',
        'canceled_at': 'bigint',
        'cancellation_reason': 'text',
        'metadata__ez360_payment_ref': 'text',
        'metadata__invoice_number': 'text'
    }) }}
)

select
    id as payment_intent_id,
    account_id,
    amount as amount_minor,
    amount_received as amount_received_minor,
    upper(currency) as currency,
    customer as customer_id,
    latest_charge as latest_charge_id,
    status,
    {{ epoch_to_timestamp('canceled_at') }} as canceled_at,
    cancellation_reason,
    metadata__ez360_payment_ref as ez360_payment_ref,
    metadata__invoice_number as invoice_number,
    {{ epoch_to_timestamp('created') }} as created_at
from source
