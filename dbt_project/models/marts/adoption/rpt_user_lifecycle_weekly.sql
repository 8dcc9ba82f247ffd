-- User lifecycle per company and ISO week (growth accounting). Each user who was ever active is, in a week:
--   new          active, and this is their first active week
--   returning    active this week and the week before
--   resurrected  active this week, not the week before, active in some earlier week
--   dormant      not active this week (but active in an earlier week)
-- new + returning + resurrected = active_users; active_users + dormant_users = users ever active so far.
with user_weeks as (
    select * from {{ ref('int_adoption__user_weeks') }}
)

select
    company_id,
    calendar_week as activity_week,
    cast(sum(is_active) as {{ dbt.type_bigint() }}) as active_users,
    cast(sum(case when is_active = 1 and week_offset = 0 then 1 else 0 end) as {{ dbt.type_bigint() }})
        as new_users,
    cast(sum(case when is_active = 1 and week_offset > 0 and was_active_last_week = 1 then 1 else 0 end)
         as {{ dbt.type_bigint() }}) as returning_users,
    cast(sum(case when is_active = 1 and week_offset > 0 and was_active_last_week = 0 then 1 else 0 end)
         as {{ dbt.type_bigint() }}) as resurrected_users,
    cast(sum(case when is_active = 0 then 1 else 0 end) as {{ dbt.type_bigint() }}) as dormant_users,
    cast(count(*) as {{ dbt.type_bigint() }}) as users_to_date
from user_weeks
group by 1, 2
