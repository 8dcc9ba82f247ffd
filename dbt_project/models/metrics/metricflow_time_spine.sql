-- One row per calendar day: the semantic layer's time spine and the analytics marts' calendar.
-- From var analytics_calendar_start to two years after today.
{{ config(materialized='table', schema='marts') }}

with days as (
    {{ dbt.date_spine('day', "cast('" ~ analytics_var('analytics_calendar_start') ~ "' as date)",
                      dbt.dateadd('year', 2, 'current_date')) }}
)

select cast(date_day as date) as date_day
from days
