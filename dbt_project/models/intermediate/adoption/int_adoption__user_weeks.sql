-- One row per company, user and ISO week (Monday) from the user's first active week to the week of the as-of
-- date, whether the user was active that week and in the week before: the base of retention cohorts and
-- lifecycle states.
with active_weeks as (
    select distinct company_id, user_id, {{ week_of('activity_date') }} as activity_week
    from {{ ref('int_adoption__user_activity_days') }}
),

first_weeks as (
    select company_id, user_id, min(activity_week) as cohort_week
    from active_weeks
    group by 1, 2
),

weeks as (
    select period_start as calendar_week from {{ analytics_periods('week') }} as periods
),

grid as (
    select first_weeks.company_id, first_weeks.user_id, first_weeks.cohort_week, weeks.calendar_week
    from first_weeks
    inner join weeks
        on weeks.calendar_week >= first_weeks.cohort_week
),

flagged as (
    select
        grid.company_id,
        grid.user_id,
        grid.cohort_week,
        grid.calendar_week,
        case when active_weeks.user_id is null then 0 else 1 end as is_active
    from grid
    left join active_weeks
        on grid.company_id = active_weeks.company_id
        and grid.user_id = active_weeks.user_id
        and grid.calendar_week = active_weeks.activity_week
)

select
    company_id,
    user_id,
    cohort_week,
    calendar_week,
    {{ int_div(dbt.datediff('cohort_week', 'calendar_week', 'day'), 7) }} as week_offset,
    is_active,
    coalesce(lag(is_active) over (partition by company_id, user_id order by calendar_week), 0) as was_active_last_week
from flagged
