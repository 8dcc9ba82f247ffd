-- ERPNext journal entries (currency: see the GL entries of the voucher).
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('erpnext', 'journal_entry', {
        'name': 'text',
        'modified': 'text',
        'creation': 'text',
        'docstatus': 'bigint',
        'cancelled': 'bool',
        'voucher_type': 'text',
        'company': 'text',
        'posting_date': 'date',
        'cheque_no': 'text',
        'cheque_date': 'date',
        'user_remark': 'text',
        'total_debit': 'decimal',
        'total_credit': 'decimal'
    }) }}
)

select
    name as journal_entry_id,
    voucher_type,
    company,
    posting_date,
    cheque_no,
    cheque_date,
    user_remark,
    total_debit as total_debit_amount,
    total_credit as total_credit_amount,
    modified as modified_at,
    docstatus,
    coalesce(cancelled, docstatus = 2) as is_cancelled
from source
