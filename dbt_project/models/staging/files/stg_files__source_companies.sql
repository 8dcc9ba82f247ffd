-- Company mapping from settings.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('files', 'source_companies', {
        'source': 'text',
        'source_key': 'text',
        'company_slug': 'text',
        'rule': 'text'
    }) }}
)

select
    source,
    source_key,
    company_slug,
    rule
from source
