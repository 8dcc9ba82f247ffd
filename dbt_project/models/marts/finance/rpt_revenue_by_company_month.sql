-- Invoiced revenue per company, calendar month of issue and invoice currency.
-- Only invoices that were issued count (sent, partially_paid, paid); draft and void never do.
-- Amounts are integer minor units of `currency`; divide by 10^currency_exponent for major units.

with revenue_invoices as (
    select *
    from {{ ref('stg_ops__invoices') }}
    where status in {{ sql_string_list(var('revenue_invoice_statuses')) }}
),

companies as (
    select * from {{ ref('stg_ops__companies') }}
),

by_month as (
    select
        company_id,
        cast({{ dbt.date_trunc('month', 'issue_date') }} as date) as revenue_month,
        currency,
        count(*) as invoice_count,
        sum(subtotal_minor) as net_revenue_minor,
        sum(tax_minor) as tax_minor,
        sum(total_minor) as gross_revenue_minor
    from revenue_invoices
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
