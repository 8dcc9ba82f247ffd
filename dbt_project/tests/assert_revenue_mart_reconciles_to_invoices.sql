-- Business identity: per currency, the mart's gross revenue equals the qualifying invoices' totals minus
-- their credit notes' totals, and its invoice count the number of qualifying invoices (sent,
-- partially_paid, paid). Returns the currencies that disagree.
{{ config(tags=['finance', 'reconciliation']) }}

with mart as (
    select
        currency,
        sum(gross_revenue_minor) as gross_minor,
        sum(invoice_count) as invoice_count
    from {{ ref('rpt_revenue_by_company_month') }}
    group by currency
),

qualifying as (
    select *
    from {{ ref('stg_ops__invoices') }}
    where status in {{ sql_string_list(var('revenue_invoice_statuses')) }}
),

credited as (
    select qualifying.currency, sum(notes.total_minor) as credited_minor
    from {{ ref('stg_ops__credit_notes') }} as notes
    join qualifying on qualifying.invoice_id = notes.invoice_id
    group by qualifying.currency
),

invoices as (
    select
        qualifying.currency,
        sum(qualifying.total_minor) as gross_minor,
        count(*) as invoice_count
    from qualifying
    group by qualifying.currency
)

select
    coalesce(mart.currency, invoices.currency) as currency,
    mart.gross_minor as mart_gross_minor,
    invoices.gross_minor - coalesce(credited.credited_minor, 0) as invoices_net_of_credit_minor,
    mart.invoice_count as mart_invoice_count,
    invoices.invoice_count as invoices_invoice_count
from mart
full outer join invoices
    on mart.currency = invoices.currency
left join credited
    on credited.currency = invoices.currency
where coalesce(mart.gross_minor, 0) <> coalesce(invoices.gross_minor, 0) - coalesce(credited.credited_minor, 0)
   or coalesce(mart.invoice_count, 0) <> coalesce(invoices.invoice_count, 0)
