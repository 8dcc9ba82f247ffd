-- One row per invoice; money stays integer minor units of the invoice currency.
with source as (
    select * from {{ source('ops', 'invoices') }}
)

select
    cast(id as bigint) as invoice_id,
    cast(company_id as bigint) as company_id,
    cast(client_id as bigint) as client_id,
    cast(project_id as bigint) as project_id,
    number as invoice_number,
    status,
    currency,
    issue_date,
    due_date,
    cast(subtotal_minor as bigint) as subtotal_minor,
    cast(tax_minor as bigint) as tax_minor,
    cast(total_minor as bigint) as total_minor,
    cast(amount_paid_minor as bigint) as amount_paid_minor,
    cast(credited_minor as bigint) as credited_minor,
    deleted_at,
    sent_at,
    created_at,
    updated_at
from source
