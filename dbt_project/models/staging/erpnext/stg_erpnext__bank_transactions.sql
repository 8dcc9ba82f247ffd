-- ERPNext bank transactions (the bank statement as ERPNext holds it).
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('erpnext', 'bank_transaction', {
        'name': 'text',
        'modified': 'text',
        'creation': 'text',
        'docstatus': 'bigint',
        'cancelled': 'bool',
        'date': 'date',
        'company': 'text',
        'bank_account': 'text',
        'currency': 'text',
        'deposit': 'decimal',
        'withdrawal': 'decimal',
        'reference_number': 'text',
        'description': 'text',
        'status': 'text'
    }) }}
)

select
    name as bank_transaction_id,
    company,
    bank_account,
    "date" as transaction_date,
    upper(currency) as currency,
    {{ to_minor('deposit', 'currency') }} as deposit_minor,
    {{ to_minor('withdrawal', 'currency') }} as withdrawal_minor,
    {{ to_minor('coalesce(deposit, 0) - coalesce(withdrawal, 0)', 'currency') }} as amount_minor,
    reference_number,
    description,
    status,
    modified as modified_at,
    docstatus,
    coalesce(cancelled, docstatus = 2) as is_cancelled
from source
