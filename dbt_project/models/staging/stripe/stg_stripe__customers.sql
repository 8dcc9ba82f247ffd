-- Stripe customers.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('stripe', 'customers', {
        'id': 'text',
        'account_id': 'text',
        'created': 'bigint',
        'livemode': 'bool',
        'email': 'text',
        'name': 'text',
        'currency': 'text',
        'balance': 'bigint',
        'deleted': 'bool',
        'metadata__ez360_client_id': 'text'
    }) }}
)

select
    id as customer_id,
    account_id,
    email,
    name,
    upper(currency) as currency,
    balance as balance_minor,
    coalesce(deleted, false) as is_deleted,
    metadata__ez360_client_id as ez360_client_id,
    {{ epoch_to_timestamp('created') }} as created_at
from source
