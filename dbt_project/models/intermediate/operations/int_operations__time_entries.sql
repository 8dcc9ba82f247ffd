-- One row per time entry that was not deleted, with its month, its cost and its billable value in integer minor
-- units of the entry's currency: hours x rate, rounded half away from zero to the minor unit per entry.
with entries as (
    select * from {{ ref('stg_ops__time_entries') }}
    where deleted_at is null
)

select
    time_entry_id,
    company_id,
    project_id,
    user_id,
    work_date,
    {{ month_of('work_date') }} as work_month,
    billable,
    currency,
    hours,
    case when billable then hours else 0 end as billable_hours,
    {{ centi_hours('hours') }} as centi_hours,
    {{ centi_hours('case when billable then hours else 0 end') }} as billable_centi_hours,
    cost_rate_minor,
    rate_minor,
    cast(round(hours * cost_rate_minor, 0) as {{ dbt.type_bigint() }}) as time_cost_minor,
    cast(case when billable then round(hours * rate_minor, 0) else 0 end as {{ dbt.type_bigint() }})
        as billable_value_minor
from entries
