-- Finance KPIs per company and month in the company's base currency, for the executive mart. The figures are
-- the warehouse's finance marts (rpt_revenue_by_month, rpt_dso_cei_by_month: per currency) converted at the
-- month-end rate (int_fx_rates; the as-of date for the current month) and summed over currencies; DSO and CEI
-- are then recomputed from the summed components with the warehouse's own definitions:
--   dso_days  = closing AR / credit sales x days in the month
--   cei_ratio = (opening AR + credit sales - closing AR) / (opening AR + credit sales - current AR)
-- exact, rounded half away from zero to 4 places.
with companies as (
    select company_id, base_currency from {{ ref('dim_companies') }}
),

rates as (
    select * from {{ ref('int_fx_rates') }}
),

per_currency as (
    select
        coalesce(revenue.company_id, ar.company_id) as company_id,
        coalesce(revenue.revenue_month, ar.revenue_month) as kpi_month,
        coalesce(revenue.currency, ar.currency) as currency,
        coalesce(revenue.net_invoiced_minor, 0) as net_invoiced_minor,
        coalesce(revenue.recognised_minor, 0) as recognised_minor,
        coalesce(revenue.collected_minor, 0) as collected_minor,
        coalesce(ar.opening_ar_minor, 0) as opening_ar_minor,
        coalesce(ar.credit_sales_minor, 0) as credit_sales_minor,
        coalesce(ar.closing_ar_minor, 0) as closing_ar_minor,
        coalesce(ar.current_ar_minor, 0) as current_ar_minor
    from {{ ref('rpt_revenue_by_month') }} as revenue
    full outer join {{ ref('rpt_dso_cei_by_month') }} as ar
        on revenue.company_id = ar.company_id
        and revenue.revenue_month = ar.revenue_month
        and revenue.currency = ar.currency
),

converted as (
    select
        per_currency.company_id,
        per_currency.kpi_month,
        {%- for column in ['net_invoiced_minor', 'recognised_minor', 'collected_minor', 'opening_ar_minor',
                           'credit_sales_minor', 'closing_ar_minor', 'current_ar_minor'] %}
        {{ analytics_to_base('per_currency.' ~ column, 'per_currency.currency', 'companies.base_currency',
                             'rates.rate') }} as {{ column | replace('_minor', '_base_minor') }},
        {%- endfor %}
        case when per_currency.currency <> companies.base_currency and rates.rate is null then 1 else 0 end
            as missing_rate
    from per_currency
    inner join companies
        on per_currency.company_id = companies.company_id
    left join rates
        on {{ rate_valid_on('rates', 'per_currency.currency', 'companies.base_currency',
                            analytics_month_close('per_currency.kpi_month')) }}
),

summed as (
    select
        company_id,
        kpi_month,
        sum(net_invoiced_base_minor) as revenue_net_base_minor,
        sum(recognised_base_minor) as recognised_base_minor,
        sum(collected_base_minor) as collected_base_minor,
        sum(opening_ar_base_minor) as opening_ar_base_minor,
        sum(credit_sales_base_minor) as credit_sales_base_minor,
        sum(closing_ar_base_minor) as open_ar_base_minor,
        sum(current_ar_base_minor) as current_ar_base_minor,
        sum(missing_rate) as amounts_without_rate
    from converted
    group by 1, 2
)

select
    company_id,
    kpi_month,
    cast(revenue_net_base_minor as {{ dbt.type_bigint() }}) as revenue_net_base_minor,
    cast(recognised_base_minor as {{ dbt.type_bigint() }}) as recognised_base_minor,
    cast(collected_base_minor as {{ dbt.type_bigint() }}) as collected_base_minor,
    cast(opening_ar_base_minor as {{ dbt.type_bigint() }}) as opening_ar_base_minor,
    cast(credit_sales_base_minor as {{ dbt.type_bigint() }}) as credit_sales_base_minor,
    cast(open_ar_base_minor as {{ dbt.type_bigint() }}) as open_ar_base_minor,
    cast(current_ar_base_minor as {{ dbt.type_bigint() }}) as current_ar_base_minor,
    cast(amounts_without_rate as {{ dbt.type_bigint() }}) as amounts_without_rate,
    cast(case when credit_sales_base_minor > 0 then
        {{ ratio('open_ar_base_minor * ' ~ dbt.datediff('kpi_month', dbt.dateadd('month', 1, 'kpi_month'), 'day'),
                 'credit_sales_base_minor') }}
    end as decimal(18, 4)) as dso_days,
    {{ ratio('opening_ar_base_minor + credit_sales_base_minor - open_ar_base_minor',
             'opening_ar_base_minor + credit_sales_base_minor - current_ar_base_minor') }} as cei_ratio
from summed
