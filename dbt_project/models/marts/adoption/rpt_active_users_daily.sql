-- Active users per day, per company (scope 'company') and platform-wide (scope 'platform', company_id null,
-- a person active in two companies counted once): DAU (that day), WAU (the var adoption_wau_days days ending
-- that day), MAU (the var adoption_mau_days days ending that day), stickiness_ratio = DAU / MAU.
-- Active = any usage event by the user. Days run from the first activity to the as-of date.
{%- set wau_days = analytics_var('adoption_wau_days') %}
{%- set mau_days = analytics_var('adoption_mau_days') %}
with activity as (
    select * from {{ ref('int_adoption__user_activity_days') }}
),

days as (
    select date_day as activity_date
    from {{ ref('metricflow_time_spine') }}
    where date_day <= {{ analytics_as_of_date() }}
),

company_days as (
    select firsts.company_id, days.activity_date
    from (select company_id, min(activity_date) as first_date from activity group by 1) as firsts
    inner join days
        on days.activity_date >= firsts.first_date
),

company_counts as (
    select
        'company' as scope,
        company_days.company_id,
        company_days.activity_date,
        count(distinct case when activity.activity_date = company_days.activity_date
                            then activity.user_id end) as dau,
        count(distinct case when activity.activity_date
                                 > cast({{ dbt.dateadd('day', -wau_days, 'company_days.activity_date') }} as date)
                            then activity.user_id end) as wau,
        count(distinct activity.user_id) as mau
    from company_days
    left join activity
        on activity.company_id = company_days.company_id
        and activity.activity_date <= company_days.activity_date
        and activity.activity_date > cast({{ dbt.dateadd('day', -mau_days, 'company_days.activity_date') }} as date)
    group by 1, 2, 3
),

platform_days as (
    select days.activity_date
    from days
    where days.activity_date >= (select min(activity_date) from activity)
),

platform_counts as (
    select
        'platform' as scope,
        cast(null as {{ dbt.type_bigint() }}) as company_id,
        platform_days.activity_date,
        count(distinct case when activity.activity_date = platform_days.activity_date
                            then activity.user_id end) as dau,
        count(distinct case when activity.activity_date
                                 > cast({{ dbt.dateadd('day', -wau_days, 'platform_days.activity_date') }} as date)
                            then activity.user_id end) as wau,
        count(distinct activity.user_id) as mau
    from platform_days
    left join activity
        on activity.activity_date <= platform_days.activity_date
        and activity.activity_date > cast({{ dbt.dateadd('day', -mau_days, 'platform_days.activity_date') }} as date)
    group by 1, 2, 3
),

unioned as (
    select * from company_counts
    union all
    select * from platform_counts
)

select
    scope,
    company_id,
    activity_date,
    cast(dau as {{ dbt.type_bigint() }}) as dau,
    cast(wau as {{ dbt.type_bigint() }}) as wau,
    cast(mau as {{ dbt.type_bigint() }}) as mau,
    {{ ratio('dau', 'mau') }} as stickiness_ratio
from unioned
