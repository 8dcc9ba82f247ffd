-- Chart of accounts per company.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('ops', 'accounts', {
        'id': 'bigint',
        'company_id': 'bigint',
        'code': 'text',
        'name': 'text',
        'type': 'text'
    }) }}
)

select
    id as account_id,
    company_id,
    code,
    name,
    type as account_type
from source
