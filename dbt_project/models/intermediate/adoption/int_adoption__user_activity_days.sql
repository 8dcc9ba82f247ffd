-- One row per company, user and UTC day on which the user did anything in EZ360 (any usage event with a user).
-- The activity base of every adoption mart.
select
    company_id,
    user_id,
    occurred_on as activity_date,
    cast(count(*) as {{ dbt.type_bigint() }}) as events
from {{ ref('stg_ops__usage_events') }}
where user_id is not null
  and occurred_on <= {{ analytics_as_of_date() }}
group by 1, 2, 3
