-- Stripe refunds.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('stripe', 'refunds', {
        'id': 'text',
        'account_id': 'text',
        'created': 'bigint',
        'livemode': 'bool',
        'amount': 'bigint',
        'currency': 'text',
        'charge': 'text',
        'payment_intent': 'text',
        'balance_transaction': 'text',
        'status': 'text',
        'reason': 'text',
        'failure_reason': 'text',
        'failure_balance_transaction': 'text'
    }) }}
)

select
    id as refund_id,
    account_id,
    charge as charge_id,
    amount as amount_minor,
    upper(currency) as currency,
    status,
    reason,
    failure_reason,
    balance_transaction as balance_transaction_id,
    failure_balance_transaction as failure_balance_transaction_id,
    {{ epoch_to_timestamp('created') }} as created_at,
    {{ epoch_to_date('created') }} as created_on
from source
