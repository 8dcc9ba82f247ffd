-- ERPNext payment entries.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('erpnext', 'payment_entry', {
        'name': 'text',
        'modified': 'text',
        'creation': 'text',
        'docstatus': 'bigint',
        'cancelled': 'bool',
        'payment_type': 'text',
        'party_type': 'text',
        'party': 'text',
        'company': 'text',
        'posting_date': 'date',
        'paid_to': 'text',
        'paid_from': 'text',
        'paid_amount': 'decimal',
        'received_amount': 'decimal',
        'paid_to_account_currency': 'text',
        'reference_no': 'text',
        'reference_date': 'date',
        'mode_of_payment': 'text'
    }) }}
)

select
    name as payment_entry_id,
    payment_type,
    party_type,
    party,
    company,
    posting_date,
    reference_date,
    paid_to,
    paid_from,
    upper(paid_to_account_currency) as currency,
    {{ to_minor('received_amount', 'paid_to_account_currency') }} as received_amount_minor,
    {{ to_minor('paid_amount', 'paid_to_account_currency') }} as paid_amount_minor,
    reference_no,
    mode_of_payment,
    modified as modified_at,
    docstatus,
    coalesce(cancelled, docstatus = 2) as is_cancelled
from source
