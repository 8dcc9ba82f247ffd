-- One row per Stripe customer, currency and calendar month, from the customer's first subscription month to
-- the month of the as-of date: the customer's MRR at the close of the month (its last day, or the as-of date
-- for the current month), summed over the subscription items that count on that day.
with items as (
    select * from {{ ref('int_revenue__subscription_items_mrr') }}
),

months as (
    select period_start as mrr_month from {{ analytics_periods('month') }} as periods
),

customers as (
    select
        source_company_key,
        account_id,
        company_id,
        customer_id,
        currency,
        min({{ month_of('starts_on') }}) as first_month
    from items
    group by 1, 2, 3, 4, 5
),

grid as (
    select
        customers.source_company_key,
        customers.account_id,
        customers.company_id,
        customers.customer_id,
        customers.currency,
        months.mrr_month,
        {{ analytics_month_close('months.mrr_month') }} as measured_on
    from customers
    inner join months
        on months.mrr_month >= customers.first_month
)

select
    grid.source_company_key,
    grid.account_id,
    grid.company_id,
    grid.customer_id,
    grid.currency,
    grid.mrr_month,
    grid.measured_on,
    cast(coalesce(sum(items.mrr_minor), 0) as {{ dbt.type_bigint() }}) as mrr_minor,
    cast(count(items.subscription_item_id) as {{ dbt.type_bigint() }}) as active_items
from grid
left join items
    on items.account_id = grid.account_id
    and items.customer_id = grid.customer_id
    and items.currency = grid.currency
    and items.starts_on <= grid.measured_on
    and (items.ends_on is null or items.ends_on > grid.measured_on)
group by 1, 2, 3, 4, 5, 6, 7
