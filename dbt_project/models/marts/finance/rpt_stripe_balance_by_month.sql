-- Stripe activity per account, month, settlement currency and reporting_category (charge, refund, dispute,
-- payout, payout_reversal, fee, ...): gross, fees (from fee_details), net, in minor units of `currency`.
-- Summed over categories, net is the month's change of the Stripe balance.
select
    account_id,
    company_id,
    source_company_key,
    created_month,
    currency,
    currency_exponent,
    coalesce(reporting_category, transaction_type) as reporting_category,
    cast(count(*) as {{ dbt.type_bigint() }}) as transaction_count,
    cast(sum(amount_minor) as {{ dbt.type_bigint() }}) as gross_minor,
    cast(sum(fee_minor) as {{ dbt.type_bigint() }}) as fee_minor,
    cast(sum(fee_details_minor) as {{ dbt.type_bigint() }}) as fee_details_minor,
    cast(sum(net_minor) as {{ dbt.type_bigint() }}) as net_minor
from {{ ref('fct_stripe_balance_transactions') }}
group by 1, 2, 3, 4, 5, 6, 7
