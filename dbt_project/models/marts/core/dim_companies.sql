-- One row per EZ360 company with its base (reporting) currency.
select
    company_id,
    slug as company_slug,
    name as company_name,
    base_currency,
    {{ currency_exponent('base_currency') }} as base_currency_exponent,
    plan,
    payment_terms_days,
    stripe_account_id,
    created_at
from {{ ref('stg_ops__companies') }}
