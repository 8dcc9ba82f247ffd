{{ config(materialized='incremental', unique_key='balance_transaction_id', on_schema_change='fail') }}
-- One row per Stripe balance transaction (every movement of a Stripe balance), in minor units of its
-- settlement `currency`: gross, fee (Stripe's `fee`), fee from fee_details (stripe_fee / application_fee /
-- tax), net; the payout that settled it (raw_stripe.payout_balance_transactions, null while unpaid or for
-- manual payouts) and the EZ360 company of its account.
-- Incremental (append-heavy): each run re-reads the transactions created in the last
-- var('stripe_incremental_lookback_days') days before the newest one loaded, so late payout links and
-- status changes land; `dbt build --full-refresh` rebuilds the same rows from scratch.
with txns as (
    select * from {{ ref('stg_stripe__balance_transactions') }}
    {% if is_incremental() %}
    where created_at >= (
        select {{ dbt.dateadd('day', -var('stripe_incremental_lookback_days'), 'max(created_at)') }} from {{ this }}
    )
    {% endif %}
),

fee_details as (
    select balance_transaction_dlt_id,
           sum(amount_minor) as fee_details_minor,
           sum(case when fee_type = 'stripe_fee' then amount_minor else 0 end) as stripe_fee_minor
    from {{ ref('stg_stripe__balance_transaction_fee_details') }}
    group by balance_transaction_dlt_id
),

payouts as (
    select links.balance_transaction_id, min(links.payout_id) as payout_id
    from {{ ref('stg_stripe__payout_balance_transactions') }} as links
    join {{ ref('stg_stripe__balance_transactions') }} as own
        on own.balance_transaction_id = links.balance_transaction_id
    where not (own.transaction_type = 'payout' and own.source_id = links.payout_id)
    group by links.balance_transaction_id
)

select
    txns.balance_transaction_id,
    txns.account_id,
    map.company_id,
    map.source_company_key,
    txns.transaction_type,
    txns.reporting_category,
    txns.source_id,
    txns.status,
    txns.currency,
    {{ currency_exponent('txns.currency') }} as currency_exponent,
    txns.amount_minor,
    txns.fee_minor,
    cast(coalesce(fee_details.fee_details_minor, 0) as {{ dbt.type_bigint() }}) as fee_details_minor,
    cast(coalesce(fee_details.stripe_fee_minor, 0) as {{ dbt.type_bigint() }}) as stripe_fee_minor,
    txns.net_minor,
    txns.exchange_rate,
    payouts.payout_id,
    txns.created_at,
    txns.created_on,
    cast({{ dbt.date_trunc('month', 'txns.created_on') }} as date) as created_month,
    txns.available_on
from txns
left join fee_details on fee_details.balance_transaction_dlt_id = txns.dlt_row_id
left join payouts on payouts.balance_transaction_id = txns.balance_transaction_id
left join {{ ref('int_source_company_map') }} as map on map.source = 'stripe' and map.source_key = txns.account_id
