-- General-ledger journal entries.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('ops', 'journal_entries', {
        'id': 'bigint',
        'company_id': 'bigint',
        'entry_date': 'date',
        'memo': 'text',
        'currency': 'text',
        'status': 'text',
        'source_type': 'text',
        'source_id': 'bigint',
        'reversal_of_id': 'bigint',
        'posted_at': 'keep',
        'created_at': 'keep',
        'updated_at': 'keep'
    }) }}
)

select
    id as journal_entry_id,
    company_id,
    entry_date,
    memo,
    upper(currency) as currency,
    status,
    source_type,
    source_id,
    reversal_of_id,
    posted_at,
    created_at,
    updated_at
from source
