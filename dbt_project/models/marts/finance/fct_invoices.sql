-- One row per issued ops invoice (drafts and deleted drafts excluded) with its credit notes applied:
-- invoiced, credited, net (= invoiced - credited), paid (allocations net of refunds) and due (= net - paid),
-- integer minor units of the invoice currency, plus net and invoiced in the company's base currency.
with invoices as (
    select * from {{ ref('stg_ops__invoices') }}
    where status <> 'draft' and deleted_at is null
),

credits as (
    select invoice_id, sum(total_minor) as credited_minor, sum(net_minor) as credited_net_minor,
           sum(tax_minor) as credited_tax_minor, count(*) as credit_note_count
    from {{ ref('stg_ops__credit_notes') }}
    group by invoice_id
),

payments as (
    select invoice_id, sum(amount_minor) as paid_minor
    from {{ ref('stg_ops__payment_allocations') }}
    group by invoice_id
),

companies as (
    select company_id, base_currency from {{ ref('dim_companies') }}
),

joined as (
    select
        invoices.invoice_id,
        invoices.company_id,
        invoices.client_id,
        invoices.project_id,
        invoices.invoice_number,
        invoices.status,
        invoices.status in {{ sql_string_list(var('revenue_invoice_statuses')) }} as is_revenue,
        invoices.currency,
        invoices.issue_date,
        cast({{ dbt.date_trunc('month', 'invoices.issue_date') }} as date) as invoice_month,
        invoices.due_date,
        invoices.total_minor as invoiced_minor,
        invoices.subtotal_minor as invoiced_net_minor,
        invoices.tax_minor as invoiced_tax_minor,
        cast(coalesce(credits.credited_minor, 0) as {{ dbt.type_bigint() }}) as credited_minor,
        cast(coalesce(credits.credited_net_minor, 0) as {{ dbt.type_bigint() }}) as credited_net_minor,
        cast(coalesce(credits.credited_tax_minor, 0) as {{ dbt.type_bigint() }}) as credited_tax_minor,
        cast(coalesce(credits.credit_note_count, 0) as {{ dbt.type_bigint() }}) as credit_note_count,
        cast(coalesce(payments.paid_minor, 0) as {{ dbt.type_bigint() }}) as paid_minor,
        companies.base_currency
    from invoices
    left join credits on credits.invoice_id = invoices.invoice_id
    left join payments on payments.invoice_id = invoices.invoice_id
    left join companies on companies.company_id = invoices.company_id
)

select
    joined.*,
    invoiced_minor - credited_minor as net_minor,
    invoiced_net_minor - credited_net_minor as net_of_tax_minor,
    invoiced_minor - credited_minor - paid_minor as due_minor,
    {{ currency_exponent('joined.currency') }} as currency_exponent,
    fx.rate as base_rate,
    {{ convert_minor('invoiced_minor', 'joined.currency', 'joined.base_currency', 'fx.rate') }} as invoiced_base_minor,
    {{ convert_minor('invoiced_minor - credited_minor', 'joined.currency', 'joined.base_currency', 'fx.rate') }}
        as net_base_minor
from joined
left join {{ ref('int_fx_rates') }} as fx
    on fx.currency = joined.currency and fx.base_currency = joined.base_currency
    and joined.issue_date >= fx.valid_from and joined.issue_date < fx.valid_to
