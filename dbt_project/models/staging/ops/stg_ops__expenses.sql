-- Costs a company incurs.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('ops', 'expenses', {
        'id': 'bigint',
        'company_id': 'bigint',
        'project_id': 'bigint',
        'category': 'text',
        'vendor': 'text',
        'currency': 'text',
        'amount_minor': 'bigint',
        'incurred_on': 'date',
        'billable': 'bool',
        'deleted_at': 'keep',
        'created_at': 'keep',
        'updated_at': 'keep'
    }) }}
)

select
    id as expense_id,
    company_id,
    project_id,
    category,
    vendor,
    upper(currency) as currency,
    amount_minor,
    incurred_on,
    billable,
    deleted_at,
    created_at,
    updated_at
from source
