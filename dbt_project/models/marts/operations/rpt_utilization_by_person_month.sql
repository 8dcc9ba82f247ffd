-- Utilization per person, company and month: billable hours / available hours.
-- People: members whose role is in var utilization_roles, plus anyone who logged time; each from the earlier
-- of the month they joined and the month of their first time entry, to the month of the as-of date.
-- Available hours = var utilization_hours_per_weekday x weekdays (Mon-Fri) of the month (docs/analytics-marts.md).
with entries as (
    select * from {{ ref('int_operations__time_entries') }}
),

people as (
    select company_id, user_id, min(first_month) as first_month
    from (
        select company_id, user_id, {{ month_of('created_at') }} as first_month
        from {{ ref('stg_ops__memberships') }}
        where role in {{ sql_string_list(analytics_var('utilization_roles')) }}
        union all
        select company_id, user_id, min(work_month) as first_month
        from entries
        group by 1, 2
    ) as candidates
    group by 1, 2
),

person_months as (
    select people.company_id, people.user_id, working_days.calendar_month as work_month, working_days.weekdays
    from people
    inner join {{ ref('int_operations__working_days') }} as working_days
        on working_days.calendar_month >= people.first_month
        and working_days.calendar_month <= {{ month_of(analytics_as_of_date()) }}
),

logged as (
    select
        company_id,
        user_id,
        work_month,
        sum(hours) as total_hours,
        sum(billable_hours) as billable_hours,
        sum(billable_centi_hours) as billable_centi_hours
    from entries
    group by 1, 2, 3
)

select
    person_months.company_id,
    person_months.user_id,
    person_months.work_month,
    cast(coalesce(logged.total_hours, 0) as decimal(18, 2)) as total_hours,
    cast(coalesce(logged.billable_hours, 0) as decimal(18, 2)) as billable_hours,
    cast(person_months.weekdays * {{ analytics_var('utilization_hours_per_weekday') }} as decimal(18, 2))
        as available_hours,
    {{ ratio('coalesce(logged.billable_centi_hours, 0)',
             'person_months.weekdays * ' ~ analytics_var('utilization_hours_per_weekday') ~ ' * 100') }}
        as utilization_ratio
from person_months
left join logged
    on person_months.company_id = logged.company_id
    and person_months.user_id = logged.user_id
    and person_months.work_month = logged.work_month
