-- Invoiced revenue NET OF CREDIT NOTES per company, calendar month and invoice currency.
-- Invoices count in their issue month (sent, partially_paid, paid; draft and void never do); a credit note
-- on such an invoice subtracts its net, tax and total in the month of the credit note's issue date, as the
-- ledger books it (a 1,000.00 invoice with a 400.00 credit note counts 600.00).
-- Amounts are integer minor units of `currency`; divide by 10^currency_exponent for major units.

with revenue_invoices as (
    select *
    from {{ ref('stg_ops__invoices') }}
    where status in {{ sql_string_list(var('revenue_invoice_statuses')) }}
),

companies as (
    select * from {{ ref('stg_ops__companies') }}
),

movements as (
    select
        company_id,
        cast({{ dbt.date_trunc('month', 'issue_date') }} as date) as revenue_month,
        currency,
        1 as invoice_count,
        subtotal_minor as net_minor,
        tax_minor,
        total_minor
    from revenue_invoices
    union all
    select
        revenue_invoices.company_id,
        cast({{ dbt.date_trunc('month', 'notes.issue_date') }} as date),
        revenue_invoices.currency,
        0,
        -notes.net_minor,
        -notes.tax_minor,
        -notes.total_minor
    from {{ ref('stg_ops__credit_notes') }} as notes
    join revenue_invoices on revenue_invoices.invoice_id = notes.invoice_id
),

by_month as (
    select
        company_id,
        revenue_month,
        currency,
        sum(invoice_count) as invoice_count,
        sum(net_minor) as net_revenue_minor,
        sum(tax_minor) as tax_minor,
        sum(total_minor) as gross_revenue_minor
    from movements
    group by 1, 2, 3
)

select
    by_month.company_id,
    companies.slug as company_slug,
    companies.name as company_name,
    by_month.revenue_month,
    by_month.currency,
    {{ currency_exponent('by_month.currency') }} as currency_exponent,
    cast(by_month.invoice_count as bigint) as invoice_count,
    cast(by_month.net_revenue_minor as bigint) as net_revenue_minor,
    cast(by_month.tax_minor as bigint) as tax_minor,
    cast(by_month.gross_revenue_minor as bigint) as gross_revenue_minor
from by_month
left join companies
    on by_month.company_id = companies.company_id
