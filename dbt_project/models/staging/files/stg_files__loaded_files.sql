-- Export files loaded.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('files', 'loaded_files', {
        'file_sha256': 'text',
        'kind': 'text',
        'file_name': 'text',
        'rows': 'bigint',
        'quarantined': 'bigint',
        'loaded_at': 'keep'
    }) }}
)

select
    file_sha256,
    kind,
    file_name,
    rows as row_count,
    quarantined as quarantined_count,
    loaded_at
from source
