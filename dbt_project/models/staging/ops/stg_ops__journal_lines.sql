-- Debit/credit lines of journal entries.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('ops', 'journal_lines', {
        'id': 'bigint',
        'company_id': 'bigint',
        'journal_entry_id': 'bigint',
        'account_id': 'bigint',
        'debit_minor': 'bigint',
        'credit_minor': 'bigint'
    }) }}
)

select
    id as journal_line_id,
    company_id,
    journal_entry_id,
    account_id,
    debit_minor,
    credit_minor
from source
