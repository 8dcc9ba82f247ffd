-- One row per Stripe subscription item: its monthly recurring amount (MRR) in minor units of the item's
-- currency and the dates between which it counts. The rules (docs/analytics-marts.md):
--   * monthly amount = unit_amount x quantity normalised to one month: interval month -> / interval_count,
--     year -> / (12 x interval_count), week -> x 52 / (12 x interval_count), day -> x 365 / (12 x interval_count),
--     rounded half away from zero to the minor unit.
--   * the item counts from the subscription's start date (inclusive) until the date it ended (exclusive):
--     ended_at, else canceled_at when the subscription is canceled, else open.
--   * subscriptions whose current status is in var mrr_excluded_subscription_statuses never count.
with subscriptions as (
    select * from {{ ref('stg_stripe__subscriptions') }}
    where status not in {{ sql_string_list(analytics_var('mrr_excluded_subscription_statuses')) }}
),

items as (
    select * from {{ ref('stg_stripe__subscription_items') }}
),

company_map as (
    select source_key as account_id, company_id
    from {{ ref('int_source_company_map') }}
    where source = 'stripe'
),

normalised as (
    select
        items.subscription_item_id,
        subscriptions.subscription_id,
        subscriptions.account_id,
        subscriptions.customer_id,
        coalesce(items.currency, subscriptions.currency) as currency,
        cast(subscriptions.start_date_at as date) as starts_on,
        cast(coalesce(subscriptions.ended_at,
                      case when subscriptions.status = 'canceled' then subscriptions.canceled_at end) as date)
            as ends_on,
        cast(items.unit_amount_minor * items.quantity as {{ dbt.type_bigint() }}) as amount_per_interval_minor,
        items.billing_interval,
        coalesce(items.interval_count, 1) as interval_count
    from items
    inner join subscriptions
        on items.subscription_dlt_id = subscriptions.dlt_row_id
)

select
    normalised.subscription_item_id,
    normalised.subscription_id,
    normalised.account_id,
    company_map.company_id,
    'stripe:' || normalised.account_id as source_company_key,
    normalised.customer_id,
    normalised.currency,
    normalised.starts_on,
    normalised.ends_on,
    normalised.billing_interval,
    normalised.interval_count,
    normalised.amount_per_interval_minor,
    cast(case normalised.billing_interval
        when 'month' then {{ div_round('normalised.amount_per_interval_minor', 'normalised.interval_count') }}
        when 'year' then {{ div_round('normalised.amount_per_interval_minor', '12 * normalised.interval_count') }}
        when 'week' then {{ div_round('normalised.amount_per_interval_minor * 52', '12 * normalised.interval_count') }}
        when 'day' then {{ div_round('normalised.amount_per_interval_minor * 365', '12 * normalised.interval_count') }}
    end as {{ dbt.type_bigint() }}) as mrr_minor
from normalised
left join company_map
    on normalised.account_id = company_map.account_id
