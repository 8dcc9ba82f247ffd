-- Profitability per project over its whole life: billed (net of tax and of credit notes) - time cost -
-- project expenses, in the project currency and in the company's base currency (int_operations__project_month_amounts).
-- margin_ratio = profit / billed in base currency.
with amounts as (
    select
        project_id,
        sum(billed_minor) as billed_minor,
        sum(time_cost_minor) as time_cost_minor,
        sum(expense_minor) as expense_minor,
        sum(billed_base_minor) as billed_base_minor,
        sum(time_cost_base_minor) as time_cost_base_minor,
        sum(expense_base_minor) as expense_base_minor,
        min(amount_month) as first_activity_month,
        max(amount_month) as last_activity_month
    from {{ ref('int_operations__project_month_amounts') }}
    group by 1
),

hours as (
    select project_id, sum(hours) as hours
    from {{ ref('int_operations__time_entries') }}
    group by 1
),

projects as (
    select projects.*, companies.base_currency
    from {{ ref('stg_ops__projects') }} as projects
    inner join {{ ref('dim_companies') }} as companies
        on projects.company_id = companies.company_id
    where projects.deleted_at is null
),

summed as (
    select
        projects.project_id,
        projects.company_id,
        projects.client_id,
        projects.name as project_name,
        projects.status as project_status,
        projects.currency,
        projects.budget_minor,
        projects.base_currency,
        amounts.first_activity_month,
        amounts.last_activity_month,
        coalesce(hours.hours, 0) as hours,
        coalesce(amounts.billed_minor, 0) as billed_minor,
        coalesce(amounts.time_cost_minor, 0) as time_cost_minor,
        coalesce(amounts.expense_minor, 0) as expense_minor,
        coalesce(amounts.billed_base_minor, 0) as billed_base_minor,
        coalesce(amounts.time_cost_base_minor, 0) as time_cost_base_minor,
        coalesce(amounts.expense_base_minor, 0) as expense_base_minor
    from projects
    left join amounts
        on projects.project_id = amounts.project_id
    left join hours
        on projects.project_id = hours.project_id
)

select
    project_id,
    company_id,
    client_id,
    project_name,
    project_status,
    currency,
    {{ currency_exponent('currency') }} as currency_exponent,
    cast(budget_minor as {{ dbt.type_bigint() }}) as budget_minor,
    first_activity_month,
    last_activity_month,
    cast(hours as decimal(18, 2)) as hours,
    cast(billed_minor as {{ dbt.type_bigint() }}) as billed_minor,
    cast(time_cost_minor as {{ dbt.type_bigint() }}) as time_cost_minor,
    cast(expense_minor as {{ dbt.type_bigint() }}) as expense_minor,
    base_currency,
    cast(billed_base_minor as {{ dbt.type_bigint() }}) as billed_base_minor,
    cast(time_cost_base_minor as {{ dbt.type_bigint() }}) as time_cost_base_minor,
    cast(expense_base_minor as {{ dbt.type_bigint() }}) as expense_base_minor,
    cast(billed_base_minor - time_cost_base_minor - expense_base_minor as {{ dbt.type_bigint() }})
        as profit_base_minor,
    {{ ratio('billed_base_minor - time_cost_base_minor - expense_base_minor', 'billed_base_minor') }}
        as margin_ratio
from summed
