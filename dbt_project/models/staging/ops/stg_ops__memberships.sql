-- Which user belongs to which company, with a role.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('ops', 'memberships', {
        'id': 'bigint',
        'company_id': 'bigint',
        'user_id': 'bigint',
        'role': 'text',
        'created_at': 'keep',
        'updated_at': 'keep'
    }) }}
)

select
    id as membership_id,
    company_id,
    user_id,
    role,
    created_at,
    updated_at
from source
