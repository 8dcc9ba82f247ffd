-- Accounting identity: every ops invoice with lines has subtotal = sum of line nets, tax = sum of line
-- taxes, and total = subtotal + tax. Returns the invoices that break it.
{{ config(tags=['finance']) }}

with lines as (
    select invoice_id, sum(net_minor) as net_minor, sum(tax_minor) as tax_minor
    from {{ ref('stg_ops__invoice_lines') }}
    group by invoice_id
)

select invoices.invoice_id, invoices.subtotal_minor, lines.net_minor, invoices.tax_minor, lines.tax_minor as lines_tax_minor,
       invoices.total_minor
from {{ ref('stg_ops__invoices') }} as invoices
join lines on lines.invoice_id = invoices.invoice_id
where invoices.subtotal_minor <> lines.net_minor
   or invoices.tax_minor <> lines.tax_minor
   or invoices.total_minor <> invoices.subtotal_minor + invoices.tax_minor
