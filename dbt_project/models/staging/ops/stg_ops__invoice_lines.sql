-- Lines of an invoice.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('ops', 'invoice_lines', {
        'id': 'bigint',
        'company_id': 'bigint',
        'invoice_id': 'bigint',
        'position': 'bigint',
        'description': 'text',
        'quantity': 'decimal',
        'unit_price_minor': 'bigint',
        'discount_percent': 'decimal',
        'tax_rate_percent': 'decimal',
        'net_minor': 'bigint',
        'tax_minor': 'bigint'
    }) }}
)

select
    id as invoice_line_id,
    company_id,
    invoice_id,
    position,
    description,
    quantity,
    unit_price_minor,
    discount_percent,
    tax_rate_percent,
    net_minor,
    tax_minor
from source
