-- Revenue invoiced, collected and recognised per company, month and currency (minor units of `currency`):
-- invoiced = totals of invoices issued in the month (sent, partially_paid, paid); credited = credit notes
-- issued in the month on those invoices; net_invoiced = invoiced - credited; recognised = the same net of
-- tax (services are invoiced monthly for the month delivered, so recognition follows the invoice month);
-- collected = payments received in the month minus refunds given in the month (cash, all methods).
with invoices as (
    select * from {{ ref('fct_invoices') }} where is_revenue
),

movements as (
    select company_id, invoice_month as revenue_month, currency,
           invoiced_minor, 0 as credited_minor, invoiced_net_minor as recognised_minor, 0 as collected_minor
    from invoices
    union all
    select invoices.company_id, cast({{ dbt.date_trunc('month', 'notes.issue_date') }} as date), invoices.currency,
           0, notes.total_minor, -notes.net_minor, 0
    from {{ ref('stg_ops__credit_notes') }} as notes
    join invoices on invoices.invoice_id = notes.invoice_id
    union all
    select company_id, cast({{ dbt.date_trunc('month', 'received_on') }} as date), currency, 0, 0, 0, amount_minor
    from {{ ref('stg_ops__payments') }}
    union all
    select company_id, cast({{ dbt.date_trunc('month', 'refunded_on') }} as date), currency, 0, 0, 0, -amount_minor
    from {{ ref('stg_ops__refunds') }}
)

select
    company_id,
    revenue_month,
    currency,
    {{ currency_exponent('currency') }} as currency_exponent,
    cast(sum(invoiced_minor) as {{ dbt.type_bigint() }}) as invoiced_minor,
    cast(sum(credited_minor) as {{ dbt.type_bigint() }}) as credited_minor,
    cast(sum(invoiced_minor) - sum(credited_minor) as {{ dbt.type_bigint() }}) as net_invoiced_minor,
    cast(sum(recognised_minor) as {{ dbt.type_bigint() }}) as recognised_minor,
    cast(sum(collected_minor) as {{ dbt.type_bigint() }}) as collected_minor
from movements
group by 1, 2, 3
