-- Finance's resolutions of reconciliation items, recorded in the ops app (latest per item wins; reopened undoes).
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('ops', 'reconciliation_resolutions', {
        'id': 'bigint',
        'company_id': 'bigint',
        'pair': 'text',
        'item_key': 'text',
        'action': 'text',
        'linked_key': 'text',
        'note': 'text',
        'user_id': 'bigint',
        'created_at': 'keep'
    }) }}
)

select
    id as resolution_id,
    company_id,
    pair,
    item_key,
    action,
    linked_key,
    note,
    user_id,
    created_at
from source
