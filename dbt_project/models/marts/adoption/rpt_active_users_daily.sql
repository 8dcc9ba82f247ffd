-- Active users per day, per company (scope 'company') and platform-wide (scope 'platform', company_id null,
-- a person active in two companies counted once): DAU (that day), WAU (the var adoption_wau_days days ending
-- that day), MAU (the var adoption_mau_days days ending that day), stickiness_ratio = DAU / MAU.
-- Active = any usage event by the user. Days run from the scope's first activity to the as-of date.
{%- set wau_days = analytics_var('adoption_wau_days') %}
{%- set mau_days = analytics_var('adoption_mau_days') %}
with activity as (
    select 'company' as scope, company_id, user_id, activity_date
    from {{ ref('int_adoption__user_activity_days') }}
    union all
    select distinct 'platform', cast(null as {{ dbt.type_bigint() }}), user_id, activity_date
    from {{ ref('int_adoption__user_activity_days') }}
),

scopes as (
    select scope, company_id, coalesce(company_id, -1) as scope_company, min(activity_date) as first_date
    from activity
    group by 1, 2, 3
),

scope_days as (
    select scopes.scope, scopes.company_id, scopes.scope_company, days.date_day as activity_date
    from scopes
    inner join {{ ref('metricflow_time_spine') }} as days
        on days.date_day >= scopes.first_date
        and days.date_day <= {{ analytics_as_of_date() }}
),

counts as (
    select
        scope_days.scope,
        scope_days.company_id,
        scope_days.activity_date,
        count(distinct case when activity.activity_date = scope_days.activity_date
                            then activity.user_id end) as dau,
        count(distinct case when activity.activity_date
                                 > cast({{ dbt.dateadd('day', -wau_days, 'scope_days.activity_date') }} as date)
                            then activity.user_id end) as wau,
        count(distinct activity.user_id) as mau
    from scope_days
    left join activity
        on activity.scope = scope_days.scope
        and coalesce(activity.company_id, -1) = scope_days.scope_company
        and activity.activity_date <= scope_days.activity_date
        and activity.activity_date > cast({{ dbt.dateadd('day', -mau_days, 'scope_days.activity_date') }} as date)
    group by 1, 2, 3
)

select
    scope,
    company_id,
    activity_date,
    cast(dau as {{ dbt.type_bigint() }}) as dau,
    cast(wau as {{ dbt.type_bigint() }}) as wau,
    cast(mau as {{ dbt.type_bigint() }}) as mau,
    {{ ratio('dau', 'mau') }} as stickiness_ratio
from counts
