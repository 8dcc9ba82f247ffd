-- Account rows of journal entries.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('erpnext', 'journal_entry_account', {
        'name': 'text',
        'modified': 'text',
        'creation': 'text',
        'docstatus': 'bigint',
        'cancelled': 'bool',
        'parent': 'text',
        'idx': 'bigint',
        'account': 'text',
        'debit_in_account_currency': 'decimal',
        'credit_in_account_currency': 'decimal',
        'account_currency': 'text'
    }) }}
)

select
    name as journal_entry_account_id,
    parent as journal_entry_id,
    idx,
    account,
    debit_in_account_currency as debit_amount,
    credit_in_account_currency as credit_amount,
    modified as modified_at,
    docstatus,
    coalesce(cancelled, docstatus = 2) as is_cancelled
from source
