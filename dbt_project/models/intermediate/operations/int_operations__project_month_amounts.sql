-- One row per project and month with anything billed, logged or spent on it: billed net (invoiced net minus
-- credited net, revenue invoices only, by issue month), time cost (by work month) and project expenses (by
-- incurred month), in the project currency where the amount is in it, and every amount in the company's base
-- currency at the rate of its own date (int_fx_rates).
with projects as (
    select projects.*, companies.base_currency
    from {{ ref('stg_ops__projects') }} as projects
    inner join {{ ref('dim_companies') }} as companies
        on projects.company_id = companies.company_id
),

rates as (
    select * from {{ ref('int_fx_rates') }}
),

invoice_projects as (
    select invoice_id, project_id from {{ ref('stg_ops__invoices') }} where project_id is not null
),

amounts as (
    select
        invoice_projects.project_id,
        invoices.invoice_month as amount_month,
        invoices.currency,
        invoices.issue_date as amount_date,
        invoices.invoiced_net_minor - invoices.credited_net_minor as billed_minor,
        0 as time_cost_minor,
        0 as expense_minor
    from {{ ref('fct_invoices') }} as invoices
    inner join invoice_projects
        on invoices.invoice_id = invoice_projects.invoice_id
    where invoices.is_revenue
    union all
    select project_id, work_month, currency, work_date, 0, time_cost_minor, 0
    from {{ ref('int_operations__time_entries') }}
    union all
    select project_id, {{ month_of('incurred_on') }}, currency, incurred_on, 0, 0, amount_minor
    from {{ ref('stg_ops__expenses') }}
    where project_id is not null and deleted_at is null
),

converted as (
    select
        amounts.project_id,
        amounts.amount_month,
        projects.company_id,
        projects.currency as project_currency,
        projects.base_currency,
        case when amounts.currency = projects.currency then amounts.billed_minor else 0 end as billed_minor,
        case when amounts.currency = projects.currency then amounts.time_cost_minor else 0 end as time_cost_minor,
        case when amounts.currency = projects.currency then amounts.expense_minor else 0 end as expense_minor,
        case when amounts.currency <> projects.currency then 1 else 0 end as is_foreign_currency,
        {{ analytics_to_base('amounts.billed_minor', 'amounts.currency', 'projects.base_currency', 'rates.rate') }}
            as billed_base_minor,
        {{ analytics_to_base('amounts.time_cost_minor', 'amounts.currency', 'projects.base_currency', 'rates.rate') }}
            as time_cost_base_minor,
        {{ analytics_to_base('amounts.expense_minor', 'amounts.currency', 'projects.base_currency', 'rates.rate') }}
            as expense_base_minor,
        case when amounts.currency <> projects.base_currency and rates.rate is null then 1 else 0 end as missing_rate
    from amounts
    inner join projects
        on amounts.project_id = projects.project_id
    left join rates
        on {{ rate_valid_on('rates', 'amounts.currency', 'projects.base_currency', 'amounts.amount_date') }}
)

select
    project_id,
    amount_month,
    company_id,
    project_currency as currency,
    base_currency,
    cast(sum(billed_minor) as {{ dbt.type_bigint() }}) as billed_minor,
    cast(sum(time_cost_minor) as {{ dbt.type_bigint() }}) as time_cost_minor,
    cast(sum(expense_minor) as {{ dbt.type_bigint() }}) as expense_minor,
    cast(sum(is_foreign_currency) as {{ dbt.type_bigint() }}) as foreign_currency_amounts,
    cast(sum(billed_base_minor) as {{ dbt.type_bigint() }}) as billed_base_minor,
    cast(sum(time_cost_base_minor) as {{ dbt.type_bigint() }}) as time_cost_base_minor,
    cast(sum(expense_base_minor) as {{ dbt.type_bigint() }}) as expense_base_minor,
    cast(sum(missing_rate) as {{ dbt.type_bigint() }}) as amounts_without_rate
from converted
group by 1, 2, 3, 4, 5
