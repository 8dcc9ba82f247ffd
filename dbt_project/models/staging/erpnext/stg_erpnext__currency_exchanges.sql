-- ERPNext Currency Exchange records (empty unless the doctype is landed).
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('erpnext', 'currency_exchange', {
        'name': 'text',
        'modified': 'text',
        'creation': 'text',
        'docstatus': 'bigint',
        'cancelled': 'bool',
        'date': 'date',
        'from_currency': 'text',
        'to_currency': 'text',
        'exchange_rate': 'rate'
    }) }}
)

select
    name as currency_exchange_id,
    "date" as rate_date,
    upper(from_currency) as from_currency,
    upper(to_currency) as to_currency,
    exchange_rate,
    modified as modified_at,
    docstatus,
    coalesce(cancelled, docstatus = 2) as is_cancelled
from source
