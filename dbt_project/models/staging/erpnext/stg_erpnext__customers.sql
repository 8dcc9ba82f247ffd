-- ERPNext customers.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('erpnext', 'customer', {
        'name': 'text',
        'modified': 'text',
        'creation': 'text',
        'docstatus': 'bigint',
        'cancelled': 'bool',
        'customer_name': 'text',
        'customer_group': 'text',
        'default_currency': 'text',
        'email_id': 'text',
        'ez360_client_id': 'bigint',
        'ez360_company': 'text'
    }) }}
)

select
    name as erp_customer_id,
    customer_name,
    customer_group,
    upper(default_currency) as default_currency,
    email_id as email,
    ez360_client_id,
    ez360_company,
    modified as modified_at,
    docstatus,
    coalesce(cancelled, docstatus = 2) as is_cancelled
from source
