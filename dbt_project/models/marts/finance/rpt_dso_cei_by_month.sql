-- Days sales outstanding and collection effectiveness per company, month and currency.
-- opening/closing AR = open AR at the previous / this month end (rpt_ar_aging), credit_sales = net invoiced
-- in the month (rpt_revenue_by_month), current_ar = closing AR not yet due.
-- DSO = closing AR / credit sales x days in the month (null without sales).
-- CEI = (opening AR + credit sales - closing AR) / (opening AR + credit sales - current AR) (null when the
-- denominator is 0). Ratios are exact decimals rounded to 4 places.
with ar as (
    select company_id, as_of_date, currency,
           sum(open_minor) as ar_minor,
           sum(case when aging_bucket = 'current' then open_minor else 0 end) as current_minor
    from {{ ref('rpt_ar_aging') }}
    where as_of_date = cast({{ dbt.last_day('as_of_date', 'month') }} as date)
    group by company_id, as_of_date, currency
),

sales as (
    select company_id, revenue_month, currency, net_invoiced_minor, collected_minor
    from {{ ref('rpt_revenue_by_month') }}
),

months as (
    select company_id, revenue_month as month_start, currency from sales
    union
    select company_id, cast({{ dbt.date_trunc('month', 'as_of_date') }} as date), currency from ar
),

joined as (
    select
        months.company_id,
        months.month_start as revenue_month,
        months.currency,
        cast(coalesce(opening.ar_minor, 0) as {{ dbt.type_bigint() }}) as opening_ar_minor,
        cast(coalesce(sales.net_invoiced_minor, 0) as {{ dbt.type_bigint() }}) as credit_sales_minor,
        cast(coalesce(sales.collected_minor, 0) as {{ dbt.type_bigint() }}) as collected_minor,
        cast(coalesce(closing.ar_minor, 0) as {{ dbt.type_bigint() }}) as closing_ar_minor,
        cast(coalesce(closing.current_minor, 0) as {{ dbt.type_bigint() }}) as current_ar_minor,
        {{ dbt.datediff('months.month_start', dbt.dateadd('month', 1, 'months.month_start'), 'day') }} as days_in_month
    from months
    left join sales
        on sales.company_id = months.company_id and sales.currency = months.currency
        and sales.revenue_month = months.month_start
    left join ar as closing
        on closing.company_id = months.company_id and closing.currency = months.currency
        and cast({{ dbt.date_trunc('month', 'closing.as_of_date') }} as date) = months.month_start
    left join ar as opening
        on opening.company_id = months.company_id and opening.currency = months.currency
        and cast({{ dbt.dateadd('day', 1, 'opening.as_of_date') }} as date) = months.month_start
)

select
    joined.*,
    {{ currency_exponent('joined.currency') }} as currency_exponent,
    case when credit_sales_minor > 0
         then round(cast(closing_ar_minor as numeric(38, 6)) * days_in_month / credit_sales_minor, 4) end as dso_days,
    case when opening_ar_minor + credit_sales_minor - current_ar_minor <> 0
         then round(cast(opening_ar_minor + credit_sales_minor - closing_ar_minor as numeric(38, 6))
                    / (opening_ar_minor + credit_sales_minor - current_ar_minor), 4) end as cei_ratio
from joined
