-- Which balance transactions each automatic payout settles.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('stripe', 'payout_balance_transactions', {
        'payout_id': 'text',
        'balance_transaction_id': 'text',
        'account_id': 'text'
    }) }}
)

select
    payout_id,
    balance_transaction_id,
    account_id
from source
