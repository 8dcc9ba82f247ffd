-- Stripe subscriptions.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('stripe', 'subscriptions', {
        'id': 'text',
        'account_id': 'text',
        'created': 'bigint',
        'livemode': 'bool',
        '_dlt_id': 'text',
        'customer': 'text',
        'status': 'text',
        'currency': 'text',
        'start_date': 'bigint',
        'current_period_start': 'bigint',
        'current_period_end': 'bigint',
        'canceled_at': 'bigint',
        'ended_at': 'bigint',
        'cancel_at_period_end': 'bool',
        'metadata__ez360_client_id': 'text'
    }) }}
)

select
    id as subscription_id,
    account_id,
    customer as customer_id,
    status,
    upper(currency) as currency,
    {{ epoch_to_timestamp('start_date') }} as start_date_at,
    {{ epoch_to_timestamp('current_period_start') }} as current_period_start_at,
    {{ epoch_to_timestamp('current_period_end') }} as current_period_end_at,
    {{ epoch_to_timestamp('canceled_at') }} as canceled_at,
    {{ epoch_to_timestamp('ended_at') }} as ended_at,
    cancel_at_period_end,
    metadata__ez360_client_id as ez360_client_id,
    {{ epoch_to_timestamp('created') }} as created_at,
    _dlt_id as dlt_row_id
from source
