-- Weekly retention cohorts per company: users grouped by the ISO week of their first activity (cohort_week);
-- for each later week (week_offset 0, 1, ...) up to the as-of week, how many of them were active that week.
-- retention_ratio = retained_users / cohort_users (week 0 is 1 by construction).
with user_weeks as (
    select * from {{ ref('int_adoption__user_weeks') }}
)

select
    company_id,
    cohort_week,
    cast(week_offset as {{ dbt.type_bigint() }}) as week_offset,
    calendar_week as activity_week,
    cast(count(*) as {{ dbt.type_bigint() }}) as cohort_users,
    cast(sum(is_active) as {{ dbt.type_bigint() }}) as retained_users,
    {{ ratio('sum(is_active)', 'count(*)') }} as retention_ratio
from user_weeks
group by 1, 2, 3, 4
