-- ERPNext companies.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('erpnext', 'company', {
        'name': 'text',
        'modified': 'text',
        'creation': 'text',
        'docstatus': 'bigint',
        'cancelled': 'bool',
        'company_name': 'text',
        'abbr': 'text',
        'default_currency': 'text',
        'country': 'text'
    }) }}
)

select
    name as erp_company_id,
    company_name,
    abbr,
    upper(default_currency) as default_currency,
    modified as modified_at,
    docstatus,
    coalesce(cancelled, docstatus = 2) as is_cancelled
from source
