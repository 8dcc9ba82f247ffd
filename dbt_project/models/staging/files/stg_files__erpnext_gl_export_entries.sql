-- ERPNext General Ledger report exported to files.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('files', 'erpnext_gl_export', {
        'gl_entry': 'text',
        'posting_date': 'date',
        'account': 'text',
        'debit': 'decimal',
        'credit': 'decimal',
        'currency': 'text',
        'voucher_type': 'text',
        'voucher_no': 'text',
        'company': 'text',
        'is_cancelled': 'bool',
        'source_file': 'text'
    }) }}
)

select
    gl_entry as gl_entry_id,
    posting_date,
    account,
    upper(currency) as currency,
    {{ to_minor('debit', 'currency') }} as debit_minor,
    {{ to_minor('credit', 'currency') }} as credit_minor,
    voucher_type,
    voucher_no,
    company,
    coalesce(is_cancelled, false) as is_cancelled,
    source_file
from source
