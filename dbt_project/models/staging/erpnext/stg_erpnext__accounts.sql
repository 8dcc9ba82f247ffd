-- ERPNext chart of accounts.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('erpnext', 'account', {
        'name': 'text',
        'modified': 'text',
        'creation': 'text',
        'docstatus': 'bigint',
        'cancelled': 'bool',
        'account_name': 'text',
        'account_type': 'text',
        'root_type': 'text',
        'company': 'text',
        'is_group': 'bigint'
    }) }}
)

select
    name as erp_account_id,
    account_name,
    account_type,
    root_type,
    company,
    is_group = 1 as is_group,
    modified as modified_at,
    docstatus,
    coalesce(cancelled, docstatus = 2) as is_cancelled
from source
