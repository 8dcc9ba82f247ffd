-- Stripe payouts.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('stripe', 'payouts', {
        'id': 'text',
        'account_id': 'text',
        'created': 'bigint',
        'livemode': 'bool',
        'amount': 'bigint',
        'currency': 'text',
        'arrival_date': 'bigint',
        'automatic': 'bool',
        'method': 'text',
        'type': 'text',
        'status': 'text',
        'balance_transaction': 'text',
        'failure_code': 'text',
        'failure_message': 'text',
        'failure_balance_transaction': 'text',
        'original_payout': 'text',
        'reversed_by': 'text',
        'description': 'text'
    }) }}
)

select
    id as payout_id,
    account_id,
    amount as amount_minor,
    upper(currency) as currency,
    status,
    automatic as is_automatic,
    method,
    type as payout_type,
    {{ epoch_to_date('arrival_date') }} as arrival_date,
    balance_transaction as balance_transaction_id,
    failure_code,
    failure_message,
    failure_balance_transaction as failure_balance_transaction_id,
    original_payout as original_payout_id,
    reversed_by as reversed_by_id,
    description,
    {{ epoch_to_timestamp('created') }} as created_at,
    {{ epoch_to_date('created') }} as created_on
from source
