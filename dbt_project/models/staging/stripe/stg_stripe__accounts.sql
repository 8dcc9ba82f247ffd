-- Stripe accounts read (own account and connected accounts).
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('stripe', 'accounts', {
        'id': 'text',
        'account_id': 'text',
        'created': 'bigint',
        'livemode': 'bool',
        'connection': 'text',
        'default_currency': 'text',
        'country': 'text',
        'type': 'text',
        'email': 'text',
        'business_profile__name': 'text',
        'metadata__ez360_company': 'text',
        'charges_enabled': 'bool',
        'payouts_enabled': 'bool'
    }) }}
)

select
    id as stripe_account_id,
    connection,
    upper(default_currency) as default_currency,
    country,
    type as account_type,
    email,
    business_profile__name as business_name,
    metadata__ez360_company as ez360_company_slug,
    charges_enabled,
    payouts_enabled,
    {{ epoch_to_timestamp('created') }} as created_at
from source
