-- Bank statement lines from export files.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('files', 'bank_statement_lines', {
        'line_id': 'text',
        'bank_account': 'text',
        'booking_date': 'date',
        'value_date': 'date',
        'amount': 'decimal',
        'currency': 'text',
        'reference': 'text',
        'description': 'text',
        'counterparty': 'text',
        'source_file': 'text',
        'file_sha256': 'text'
    }) }}
)

select
    line_id as bank_statement_line_id,
    bank_account,
    booking_date,
    value_date,
    upper(currency) as currency,
    {{ to_minor('amount', 'currency') }} as amount_minor,
    reference,
    description,
    counterparty,
    source_file,
    file_sha256
from source
