-- Budget burn per project and month: the billable value of the time logged on the project (billable hours x
-- the entry's rate, per entry rounded to the minor unit), month by month and cumulated, against the project's
-- budget (minor units of the project currency). burn_ratio = cumulative billable value / budget (null without
-- a budget). Months run from the project's first time entry to the month of the as-of date.
with entries as (
    select * from {{ ref('int_operations__time_entries') }}
),

projects as (
    select * from {{ ref('stg_ops__projects') }}
),

first_months as (
    select project_id, min(work_month) as first_month
    from entries
    group by 1
),

project_months as (
    select first_months.project_id, working_days.calendar_month as burn_month
    from first_months
    inner join {{ ref('int_operations__working_days') }} as working_days
        on working_days.calendar_month >= first_months.first_month
        and working_days.calendar_month <= {{ month_of(analytics_as_of_date()) }}
),

monthly as (
    select
        project_id,
        work_month,
        sum(hours) as hours,
        sum(billable_value_minor) as billable_value_minor
    from entries
    group by 1, 2
),

filled as (
    select
        project_months.project_id,
        project_months.burn_month,
        coalesce(monthly.hours, 0) as hours,
        coalesce(monthly.billable_value_minor, 0) as billable_value_minor
    from project_months
    left join monthly
        on project_months.project_id = monthly.project_id
        and project_months.burn_month = monthly.work_month
),

cumulated as (
    select
        *,
        sum(hours) over (partition by project_id order by burn_month
                         rows between unbounded preceding and current row) as cumulative_hours,
        sum(billable_value_minor) over (partition by project_id order by burn_month
                                        rows between unbounded preceding and current row)
            as cumulative_billed_time_minor
    from filled
)

select
    cumulated.project_id,
    cumulated.burn_month,
    projects.company_id,
    projects.client_id,
    projects.name as project_name,
    projects.status as project_status,
    projects.currency,
    {{ currency_exponent('projects.currency') }} as currency_exponent,
    cast(projects.budget_minor as {{ dbt.type_bigint() }}) as budget_minor,
    cast(cumulated.hours as decimal(18, 2)) as hours,
    cast(cumulated.cumulative_hours as decimal(18, 2)) as cumulative_hours,
    cast(cumulated.billable_value_minor as {{ dbt.type_bigint() }}) as billed_time_minor,
    cast(cumulated.cumulative_billed_time_minor as {{ dbt.type_bigint() }}) as cumulative_billed_time_minor,
    cast(projects.budget_minor - cumulated.cumulative_billed_time_minor as {{ dbt.type_bigint() }})
        as remaining_budget_minor,
    {{ ratio('cumulated.cumulative_billed_time_minor', 'nullif(projects.budget_minor, 0)') }} as burn_ratio
from cumulated
inner join projects
    on cumulated.project_id = projects.project_id
