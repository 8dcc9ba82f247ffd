-- ERPNext general ledger entries.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('erpnext', 'gl_entry', {
        'name': 'text',
        'modified': 'text',
        'creation': 'text',
        'docstatus': 'bigint',
        'cancelled': 'bool',
        'posting_date': 'date',
        'account': 'text',
        'debit': 'decimal',
        'credit': 'decimal',
        'account_currency': 'text',
        'voucher_type': 'text',
        'voucher_no': 'text',
        'company': 'text',
        'party_type': 'text',
        'party': 'text',
        'is_cancelled': 'bigint'
    }) }}
)

select
    name as gl_entry_id,
    company,
    account,
    posting_date,
    upper(account_currency) as currency,
    {{ to_minor('debit', 'account_currency') }} as debit_minor,
    {{ to_minor('credit', 'account_currency') }} as credit_minor,
    voucher_type,
    voucher_no,
    party_type,
    party,
    modified as modified_at,
    docstatus,
    coalesce(cancelled, false) or coalesce(is_cancelled, 0) = 1 or docstatus = 2 as is_cancelled
from source
