-- Hours logged by users against projects.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('ops', 'time_entries', {
        'id': 'bigint',
        'company_id': 'bigint',
        'project_id': 'bigint',
        'user_id': 'bigint',
        'work_date': 'date',
        'hours': 'decimal',
        'billable': 'bool',
        'currency': 'text',
        'rate_minor': 'bigint',
        'cost_rate_minor': 'bigint',
        'description': 'text',
        'deleted_at': 'keep',
        'created_at': 'keep',
        'updated_at': 'keep'
    }) }}
)

select
    id as time_entry_id,
    company_id,
    project_id,
    user_id,
    work_date,
    hours,
    billable,
    upper(currency) as currency,
    rate_minor,
    cost_rate_minor,
    description,
    deleted_at,
    created_at,
    updated_at
from source
