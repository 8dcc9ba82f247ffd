-- One row per calendar month of the analytics calendar: its weekdays (Monday to Friday), the basis of
-- available hours (var utilization_hours_per_weekday per weekday; public holidays are not subtracted).
select
    {{ month_of('date_day') }} as calendar_month,
    cast(sum(case when extract(dow from date_day) in (0, 6) then 0 else 1 end)
         as {{ dbt.type_bigint() }}) as weekdays
from {{ ref('metricflow_time_spine') }}
group by 1
