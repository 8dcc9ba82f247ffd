-- Fee breakdown of balance transactions (`fee_details`). Join to stg_stripe__balance_transactions on balance_transaction_dlt_id.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('stripe', 'balance_transactions__fee_details', {
        '_dlt_id': 'text',
        '_dlt_parent_id': 'text',
        'amount': 'bigint',
        'currency': 'text',
        'type': 'text'
    }) }}
)

select
    _dlt_id as fee_detail_id,
    _dlt_parent_id as balance_transaction_dlt_id,
    amount as amount_minor,
    upper(currency) as currency,
    type as fee_type
from source
