-- Product usage events.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('ops', 'usage_events', {
        'id': 'bigint',
        'company_id': 'bigint',
        'user_id': 'bigint',
        'event_name': 'text',
        'occurred_at': 'keep',
        'properties': 'json'
    }) }}
)

select
    id as usage_event_id,
    company_id,
    user_id,
    event_name,
    occurred_at,
    cast(occurred_at as date) as occurred_on,
    properties
from source
