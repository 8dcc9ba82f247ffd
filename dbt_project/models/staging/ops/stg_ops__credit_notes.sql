-- Corrections of sent invoices; immutable.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('ops', 'credit_notes', {
        'id': 'bigint',
        'company_id': 'bigint',
        'invoice_id': 'bigint',
        'client_id': 'bigint',
        'number': 'text',
        'currency': 'text',
        'issue_date': 'date',
        'reason': 'text',
        'net_minor': 'bigint',
        'tax_minor': 'bigint',
        'total_minor': 'bigint',
        'created_at': 'keep'
    }) }}
)

select
    id as credit_note_id,
    company_id,
    invoice_id,
    client_id,
    number as credit_note_number,
    upper(currency) as currency,
    issue_date,
    reason,
    net_minor,
    tax_minor,
    total_minor,
    created_at
from source
