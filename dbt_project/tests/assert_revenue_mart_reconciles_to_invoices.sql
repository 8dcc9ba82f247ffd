-- Business identity: per currency, the mart's gross revenue and invoice count equal those of the
-- qualifying invoices in staging (sent, partially_paid, paid). Returns the currencies that disagree.
{{ config(tags=['finance', 'reconciliation']) }}

with mart as (
    select
        currency,
        sum(gross_revenue_minor) as gross_minor,
        sum(invoice_count) as invoice_count
    from {{ ref('rpt_revenue_by_company_month') }}
    group by currency
),

invoices as (
    select
        currency,
        sum(total_minor) as gross_minor,
        count(*) as invoice_count
    from {{ ref('stg_ops__invoices') }}
    where status in {{ sql_string_list(var('revenue_invoice_statuses')) }}
    group by currency
)

select
    coalesce(mart.currency, invoices.currency) as currency,
    mart.gross_minor as mart_gross_minor,
    invoices.gross_minor as invoices_gross_minor,
    mart.invoice_count as mart_invoice_count,
    invoices.invoice_count as invoices_invoice_count
from mart
full outer join invoices
    on mart.currency = invoices.currency
where coalesce(mart.gross_minor, 0) <> coalesce(invoices.gross_minor, 0)
   or coalesce(mart.invoice_count, 0) <> coalesce(invoices.invoice_count, 0)
