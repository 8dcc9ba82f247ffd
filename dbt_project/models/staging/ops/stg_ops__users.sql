-- People who can sign in (password hashes are never copied).
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('ops', 'users', {
        'id': 'bigint',
        'email': 'text',
        'full_name': 'text',
        'email_verified_at': 'keep',
        'is_active': 'bool',
        'created_at': 'keep',
        'updated_at': 'keep'
    }) }}
)

select
    id as user_id,
    email,
    full_name,
    is_active,
    email_verified_at,
    created_at,
    updated_at
from source
