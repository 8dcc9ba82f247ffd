-- Executive KPIs: one row per company and calendar month (from the company's first month with data to the
-- month of the as-of date), every amount in the company's base currency (integer minor units), each KPI with
-- its value one month earlier (`_prev_month`) and twelve months earlier (`_year_ago`). Definitions: the metric
-- catalog (models/metrics/_metrics.yml). Finance figures: the warehouse's finance marts in base currency
-- (int_revenue__finance_kpis_company_month); MRR, utilization, margin and adoption: the analytics marts.
{%- set kpis = ['revenue_net_base_minor', 'recognised_base_minor', 'collected_base_minor', 'open_ar_base_minor',
                'dso_days', 'cei_ratio', 'mrr_base_minor', 'arr_base_minor', 'nrr_ratio', 'grr_ratio',
                'utilization_ratio', 'gross_margin_ratio', 'mau', 'stickiness_ratio'] %}
with companies as (
    select company_id, company_slug, base_currency from {{ ref('dim_companies') }}
),

finance as (
    select * from {{ ref('int_revenue__finance_kpis_company_month') }}
),

rates as (
    select * from {{ ref('int_fx_rates') }}
),

mrr_converted as (
    select
        bridge.company_id,
        bridge.mrr_month as kpi_month,
        {%- for column in ['opening_mrr_minor', 'expansion_mrr_minor', 'contraction_mrr_minor',
                           'churned_mrr_minor', 'closing_mrr_minor'] %}
        {{ analytics_to_base('bridge.' ~ column, 'bridge.currency', 'companies.base_currency', 'rates.rate') }}
            as {{ column | replace('_minor', '_base_minor') }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ ref('rpt_mrr_by_month') }} as bridge
    inner join companies
        on bridge.company_id = companies.company_id
    left join rates
        on {{ rate_valid_on('rates', 'bridge.currency', 'companies.base_currency',
                            analytics_month_close('bridge.mrr_month')) }}
),

mrr as (
    select
        company_id,
        kpi_month,
        sum(opening_mrr_base_minor) as opening_mrr_base_minor,
        sum(opening_mrr_base_minor + expansion_mrr_base_minor + contraction_mrr_base_minor + churned_mrr_base_minor)
            as retained_net_mrr_base_minor,
        sum(opening_mrr_base_minor + contraction_mrr_base_minor + churned_mrr_base_minor)
            as retained_gross_mrr_base_minor,
        sum(closing_mrr_base_minor) as mrr_base_minor
    from mrr_converted
    group by 1, 2
),

utilization as (
    select
        company_id,
        work_month as kpi_month,
        sum({{ centi_hours('billable_hours') }}) as billable_centi_hours,
        sum({{ centi_hours('available_hours') }}) as available_centi_hours
    from {{ ref('rpt_utilization_by_person_month') }}
    group by 1, 2
),

delivery_costs as (
    select
        company_id,
        amount_month as kpi_month,
        sum(time_cost_base_minor + expense_base_minor) as delivery_cost_base_minor
    from {{ ref('int_operations__project_month_amounts') }}
    group by 1, 2
),

adoption_days as (
    select
        company_id,
        {{ month_of('activity_date') }} as kpi_month,
        sum(dau) as dau_sum,
        count(*) as days_measured
    from {{ ref('rpt_active_users_daily') }}
    where scope = 'company'
    group by 1, 2
),

adoption_month as (
    select company_id, {{ month_of('activity_date') }} as kpi_month, count(distinct user_id) as mau
    from {{ ref('int_adoption__user_activity_days') }}
    group by 1, 2
),

first_months as (
    select company_id, min(kpi_month) as first_month
    from (
        select company_id, kpi_month from finance
        union all select company_id, kpi_month from mrr
        union all select company_id, kpi_month from utilization where billable_centi_hours > 0
        union all select company_id, kpi_month from delivery_costs
        union all select company_id, kpi_month from adoption_month
    ) as months_with_data
    group by 1
),

company_months as (
    select first_months.company_id, spine.date_day as kpi_month
    from first_months
    inner join {{ ref('metricflow_time_spine') }} as spine
        on spine.date_day >= first_months.first_month
        and spine.date_day <= {{ analytics_as_of_date() }}
        and spine.date_day = {{ month_of('spine.date_day') }}
),

current_values as (
    select
        company_months.company_id,
        company_months.kpi_month,
        cast(coalesce(finance.revenue_net_base_minor, 0) as {{ dbt.type_bigint() }}) as revenue_net_base_minor,
        cast(coalesce(finance.recognised_base_minor, 0) as {{ dbt.type_bigint() }}) as recognised_base_minor,
        cast(coalesce(finance.collected_base_minor, 0) as {{ dbt.type_bigint() }}) as collected_base_minor,
        cast(finance.open_ar_base_minor as {{ dbt.type_bigint() }}) as open_ar_base_minor,
        cast(finance.dso_days as decimal(18, 4)) as dso_days,
        cast(finance.cei_ratio as decimal(18, 4)) as cei_ratio,
        cast(coalesce(mrr.mrr_base_minor, 0) as {{ dbt.type_bigint() }}) as mrr_base_minor,
        cast(12 * coalesce(mrr.mrr_base_minor, 0) as {{ dbt.type_bigint() }}) as arr_base_minor,
        cast(coalesce(mrr.opening_mrr_base_minor, 0) as {{ dbt.type_bigint() }}) as opening_mrr_base_minor,
        cast(coalesce(mrr.retained_net_mrr_base_minor, 0) as {{ dbt.type_bigint() }}) as retained_net_mrr_base_minor,
        cast(coalesce(mrr.retained_gross_mrr_base_minor, 0) as {{ dbt.type_bigint() }})
            as retained_gross_mrr_base_minor,
        {{ ratio('mrr.retained_net_mrr_base_minor', 'mrr.opening_mrr_base_minor') }} as nrr_ratio,
        {{ ratio('mrr.retained_gross_mrr_base_minor', 'mrr.opening_mrr_base_minor') }} as grr_ratio,
        cast(coalesce(utilization.billable_centi_hours, 0) as {{ dbt.type_bigint() }}) as billable_centi_hours,
        cast(coalesce(utilization.available_centi_hours, 0) as {{ dbt.type_bigint() }}) as available_centi_hours,
        {{ ratio('utilization.billable_centi_hours', 'utilization.available_centi_hours') }} as utilization_ratio,
        cast(coalesce(delivery_costs.delivery_cost_base_minor, 0) as {{ dbt.type_bigint() }})
            as delivery_cost_base_minor,
        {{ ratio('finance.recognised_base_minor - coalesce(delivery_costs.delivery_cost_base_minor, 0)',
                 'finance.recognised_base_minor') }} as gross_margin_ratio,
        cast(coalesce(adoption_days.dau_sum, 0) as {{ dbt.type_bigint() }}) as active_user_days,
        cast(coalesce(adoption_days.days_measured, 0) * coalesce(adoption_month.mau, 0) as {{ dbt.type_bigint() }})
            as mau_days,
        cast(coalesce(adoption_month.mau, 0) as {{ dbt.type_bigint() }}) as mau,
        {{ ratio('adoption_days.dau_sum', 'adoption_days.days_measured * adoption_month.mau') }} as stickiness_ratio
    from company_months
    left join finance
        on finance.company_id = company_months.company_id and finance.kpi_month = company_months.kpi_month
    left join mrr
        on mrr.company_id = company_months.company_id and mrr.kpi_month = company_months.kpi_month
    left join utilization
        on utilization.company_id = company_months.company_id and utilization.kpi_month = company_months.kpi_month
    left join delivery_costs
        on delivery_costs.company_id = company_months.company_id
        and delivery_costs.kpi_month = company_months.kpi_month
    left join adoption_days
        on adoption_days.company_id = company_months.company_id
        and adoption_days.kpi_month = company_months.kpi_month
    left join adoption_month
        on adoption_month.company_id = company_months.company_id
        and adoption_month.kpi_month = company_months.kpi_month
)

select
    current_values.company_id,
    companies.company_slug,
    current_values.kpi_month,
    companies.base_currency,
    {{ currency_exponent('companies.base_currency') }} as currency_exponent,
    current_values.opening_mrr_base_minor,
    current_values.retained_net_mrr_base_minor,
    current_values.retained_gross_mrr_base_minor,
    current_values.billable_centi_hours,
    current_values.available_centi_hours,
    current_values.delivery_cost_base_minor,
    current_values.active_user_days,
    current_values.mau_days,
    {%- for kpi in kpis %}
    current_values.{{ kpi }},
    previous.{{ kpi }} as {{ kpi }}_prev_month,
    year_ago.{{ kpi }} as {{ kpi }}_year_ago{{ "," if not loop.last }}
    {%- endfor %}
from current_values
inner join companies
    on current_values.company_id = companies.company_id
left join current_values as previous
    on previous.company_id = current_values.company_id
    and previous.kpi_month = cast({{ dbt.dateadd('month', -1, 'current_values.kpi_month') }} as date)
left join current_values as year_ago
    on year_ago.company_id = current_values.company_id
    and year_ago.kpi_month = cast({{ dbt.dateadd('month', -12, 'current_values.kpi_month') }} as date)
