-- Items of Stripe subscriptions.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('stripe', 'subscriptions__items__data', {
        'id': 'text',
        '_dlt_parent_id': 'text',
        'quantity': 'bigint',
        'price__id': 'text',
        'price__currency': 'text',
        'price__unit_amount': 'bigint',
        'price__recurring__interval': 'text',
        'price__recurring__interval_count': 'bigint'
    }) }}
)

select
    id as subscription_item_id,
    _dlt_parent_id as subscription_dlt_id,
    price__id as price_id,
    upper(price__currency) as currency,
    price__unit_amount as unit_amount_minor,
    quantity,
    price__recurring__interval as billing_interval,
    price__recurring__interval_count as interval_count
from source
