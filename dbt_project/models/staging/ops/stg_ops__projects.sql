-- Client work with a status, currency, budget and hourly rate.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('ops', 'projects', {
        'id': 'bigint',
        'company_id': 'bigint',
        'client_id': 'bigint',
        'name': 'text',
        'status': 'text',
        'currency': 'text',
        'budget_minor': 'bigint',
        'hourly_rate_minor': 'bigint',
        'deleted_at': 'keep',
        'created_at': 'keep',
        'updated_at': 'keep'
    }) }}
)

select
    id as project_id,
    company_id,
    client_id,
    name,
    status,
    upper(currency) as currency,
    budget_minor,
    hourly_rate_minor,
    deleted_at,
    created_at,
    updated_at
from source
