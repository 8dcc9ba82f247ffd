-- ERPNext sales invoice items (empty until landed).
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('erpnext', 'sales_invoice_item', {
        'name': 'text',
        'modified': 'text',
        'creation': 'text',
        'docstatus': 'bigint',
        'cancelled': 'bool',
        'parent': 'text',
        'idx': 'bigint',
        'item_code': 'text',
        'qty': 'decimal',
        'rate': 'decimal',
        'amount': 'decimal'
    }) }}
)

select
    name as sales_invoice_item_id,
    parent as sales_invoice_id,
    idx,
    item_code,
    qty,
    rate,
    amount,
    modified as modified_at,
    docstatus,
    coalesce(cancelled, docstatus = 2) as is_cancelled
from source
