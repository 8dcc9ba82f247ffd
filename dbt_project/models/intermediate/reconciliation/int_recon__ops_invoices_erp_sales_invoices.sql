-- Pair ops_invoice~erp_sales_invoice: every issued ops invoice (not draft, not deleted) against the ERPNext
-- Sales Invoice with its number (or its ez360_invoice_id), compared NET OF CREDIT NOTES on both sides: ops
-- total - credit notes vs ERPNext grand total + its returns (Sales Invoices with is_return against it).
-- Cancelled ERPNext invoices and returns never count (an amended copy, named `<number>-1`, matches by
-- ez360_invoice_id). ERPNext invoice missing: `missing_in_erpnext`; totals differ: `amount_mismatch`;
-- posted in another month / beyond the date tolerance: `timing_difference`. An ERPNext sales invoice no ops
-- invoice explains: `missing_in_ops`.
with credit_notes as (
    select invoice_id, sum(total_minor) as credited_minor
    from {{ ref('stg_ops__credit_notes') }}
    group by invoice_id
),

invoices as (
    select
        invoices.invoice_id,
        invoices.company_id,
        invoices.invoice_number,
        invoices.currency,
        invoices.issue_date,
        invoices.total_minor - coalesce(credit_notes.credited_minor, 0) as net_total_minor
    from {{ ref('stg_ops__invoices') }} as invoices
    left join credit_notes on credit_notes.invoice_id = invoices.invoice_id
    where invoices.status <> 'draft' and invoices.deleted_at is null and invoices.invoice_number is not null
),

erp as (
    select erp.*, map.company_id, map.source_company_key
    from {{ ref('stg_erpnext__sales_invoices') }} as erp
    left join {{ ref('int_source_company_map') }} as map
        on map.source = 'erpnext' and map.source_key = erp.company
    where not erp.is_cancelled
),

returns as (
    select return_against, sum(grand_total_minor) as returned_minor
    from erp
    where is_return
    group by return_against
),

originals as (
    select erp.*, erp.grand_total_minor + coalesce(returns.returned_minor, 0) as credited_total_minor
    from erp
    left join returns on returns.return_against = erp.sales_invoice_id
    where not erp.is_return
),

links as (
    select invoices.invoice_id, originals.sales_invoice_id
    from invoices
    join originals
        on originals.sales_invoice_id = invoices.invoice_number
        or (originals.ez360_invoice_id = invoices.invoice_id and originals.company_id = invoices.company_id)
),

per_invoice as (
    select
        invoice_id,
        count(*) as erp_count,
        min(sales_invoice_id) as sales_invoice_id,
        {{ dbt.listagg("sales_invoice_id", "' '", "order by sales_invoice_id") }} as sales_invoice_ids
    from links
    group by invoice_id
),

items as (
    select
        invoices.*,
        originals.sales_invoice_id,
        originals.credited_total_minor as erp_net_total_minor,
        originals.posting_date,
        originals.source_company_key,
        per_invoice.sales_invoice_ids,
        case
            when per_invoice.invoice_id is null then 'missing_in_erpnext'
            when per_invoice.erp_count > 1 then 'duplicate'
            when originals.currency <> invoices.currency
                 or not {{ recon_amount_ok('originals.credited_total_minor', 'invoices.net_total_minor') }}
                then 'amount_mismatch'
            when not {{ recon_date_ok('invoices.issue_date', 'originals.posting_date') }} then 'timing_difference'
            else 'matched'
        end as item_status
    from invoices
    left join per_invoice on per_invoice.invoice_id = invoices.invoice_id
    left join originals on originals.sales_invoice_id = per_invoice.sales_invoice_id
)

select
    'ops_invoice~erp_sales_invoice' as pair,
    'ops_invoice~erp_sales_invoice:ops:' || invoice_number as item_key,
    company_id,
    source_company_key,
    item_status as status,
    currency,
    net_total_minor as amount_minor,
    erp_net_total_minor as other_amount_minor,
    net_total_minor - coalesce(erp_net_total_minor, 0) as difference_minor,
    'ops_invoice' as left_source,
    invoice_number as left_id,
    'erp_sales_invoice' as right_source,
    sales_invoice_id as right_id,
    sales_invoice_ids as related_ids,
    issue_date as event_date,
    posting_date as other_date,
    case when sales_invoice_id = invoice_number then 'reference' when sales_invoice_id is not null then 'ez360_invoice_id' end
        as match_method
from items

union all

select
    'ops_invoice~erp_sales_invoice',
    'ops_invoice~erp_sales_invoice:erpnext:' || sales_invoice_id,
    company_id,
    source_company_key,
    'missing_in_ops',
    currency,
    credited_total_minor,
    cast(null as {{ dbt.type_bigint() }}),
    credited_total_minor,
    'ops_invoice',
    cast(null as {{ dbt.type_string() }}),
    'erp_sales_invoice',
    sales_invoice_id,
    cast(null as {{ dbt.type_string() }}),
    posting_date,
    cast(null as date),
    cast(null as {{ dbt.type_string() }})
from originals
where not exists (select 1 from links where links.sales_invoice_id = originals.sales_invoice_id)
