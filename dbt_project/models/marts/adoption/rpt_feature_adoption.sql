-- Feature adoption per company, feature and month: users who used the feature in the month (a usage event of
-- that name) out of the month's active users (any usage event). Features = var adoption_features; every
-- feature has a row for every month the company was active, so unused features show 0.
with events as (
    select company_id, user_id, event_name, {{ month_of('occurred_on') }} as activity_month
    from {{ ref('stg_ops__usage_events') }}
    where user_id is not null
      and occurred_on <= {{ analytics_as_of_date() }}
),

active as (
    select company_id, activity_month, count(distinct user_id) as active_users
    from events
    group by 1, 2
),

features as (
    {%- for feature in analytics_var('adoption_features') %}
    select '{{ feature }}' as feature{{ " union all" if not loop.last }}
    {%- endfor %}
),

feature_users as (
    select company_id, activity_month, event_name as feature, count(distinct user_id) as users
    from events
    group by 1, 2, 3
)

select
    active.company_id,
    features.feature,
    active.activity_month,
    cast(coalesce(feature_users.users, 0) as {{ dbt.type_bigint() }}) as users,
    cast(active.active_users as {{ dbt.type_bigint() }}) as active_users,
    {{ ratio('coalesce(feature_users.users, 0)', 'active.active_users') }} as adoption_ratio
from active
cross join features
left join feature_users
    on active.company_id = feature_users.company_id
    and active.activity_month = feature_users.activity_month
    and features.feature = feature_users.feature
