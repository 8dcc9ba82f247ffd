-- Stripe balance transactions (every movement of the Stripe balance).
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('stripe', 'balance_transactions', {
        'id': 'text',
        'account_id': 'text',
        'created': 'bigint',
        'livemode': 'bool',
        '_dlt_id': 'text',
        'amount': 'bigint',
        'fee': 'bigint',
        'net': 'bigint',
        'currency': 'text',
        'exchange_rate': 'rate',
        'type': 'text',
        'reporting_category': 'text',
        'source': 'text',
        'status': 'text',
        'available_on': 'bigint',
        'description': 'text'
    }) }}
)

select
    id as balance_transaction_id,
    account_id,
    type as transaction_type,
    reporting_category,
    source as source_id,
    amount as amount_minor,
    fee as fee_minor,
    net as net_minor,
    upper(currency) as currency,
    exchange_rate,
    status,
    description,
    {{ epoch_to_timestamp('created') }} as created_at,
    {{ epoch_to_date('created') }} as created_on,
    {{ epoch_to_date('available_on') }} as available_on,
    _dlt_id as dlt_row_id
from source
