-- Invoices a payment entry settles.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('erpnext', 'payment_entry_reference', {
        'name': 'text',
        'modified': 'text',
        'creation': 'text',
        'docstatus': 'bigint',
        'cancelled': 'bool',
        'parent': 'text',
        'idx': 'bigint',
        'reference_doctype': 'text',
        'reference_name': 'text',
        'allocated_amount': 'decimal'
    }) }}
)

select
    name as payment_entry_reference_id,
    parent as payment_entry_id,
    idx,
    reference_doctype,
    reference_name,
    allocated_amount,
    modified as modified_at,
    docstatus,
    coalesce(cancelled, docstatus = 2) as is_cancelled
from source
