-- ERPNext sales invoices.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('erpnext', 'sales_invoice', {
        'name': 'text',
        'modified': 'text',
        'creation': 'text',
        'docstatus': 'bigint',
        'cancelled': 'bool',
        'customer': 'text',
        'company': 'text',
        'posting_date': 'date',
        'due_date': 'date',
        'currency': 'text',
        'net_total': 'decimal',
        'total_taxes_and_charges': 'decimal',
        'grand_total': 'decimal',
        'outstanding_amount': 'decimal',
        'status': 'text',
        'ez360_invoice_id': 'bigint',
        'is_return': 'bigint',
        'return_against': 'text'
    }) }}
)

select
    name as sales_invoice_id,
    customer as erp_customer_id,
    company,
    posting_date,
    due_date,
    upper(currency) as currency,
    {{ to_minor('net_total', 'currency') }} as net_total_minor,
    {{ to_minor('total_taxes_and_charges', 'currency') }} as tax_minor,
    {{ to_minor('grand_total', 'currency') }} as grand_total_minor,
    {{ to_minor('outstanding_amount', 'currency') }} as outstanding_minor,
    grand_total as grand_total_amount,
    status,
    coalesce(is_return, 0) = 1 as is_return,
    return_against,
    ez360_invoice_id,
    modified as modified_at,
    docstatus,
    coalesce(cancelled, docstatus = 2) as is_cancelled
from source
