-- One row per compared item per reconciliation pair (docs/warehouse.md#reconciliation), with finance's
-- latest resolution from the ops app (raw_ops.reconciliation_resolutions: latest row per company, pair and
-- item_key wins; `reopened` clears it).
{% set pairs = [
    'int_recon__ops_payments_stripe_charges',
    'int_recon__stripe_balance_transactions_payouts',
    'int_recon__stripe_payouts_bank_lines',
    'int_recon__stripe_charges_erp_payment_entries',
    'int_recon__stripe_refunds_erp_journal_entries',
    'int_recon__stripe_fees_erp_gl',
    'int_recon__ops_invoices_erp_sales_invoices',
    'int_recon__ops_ledger_erp_gl',
] %}

with items as (
    {% for model in pairs %}
    select {{ recon_item_columns() }} from {{ ref(model) }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

latest as (
    select * from {{ ref('int_recon_resolutions_latest') }}
)

select
    items.item_key,
    items.pair,
    items.company_id,
    companies.slug as company_slug,
    coalesce(items.source_company_key, 'ezco:' || cast(items.company_id as {{ dbt.type_string() }})) as source_company_key,
    items.status,
    items.status not in ('matched', 'pending') as is_discrepancy,
    items.currency,
    {{ currency_exponent('items.currency') }} as currency_exponent,
    cast(items.amount_minor as {{ dbt.type_bigint() }}) as amount_minor,
    cast(items.other_amount_minor as {{ dbt.type_bigint() }}) as other_amount_minor,
    cast(items.difference_minor as {{ dbt.type_bigint() }}) as difference_minor,
    items.left_source,
    items.left_id,
    items.right_source,
    items.right_id,
    items.related_ids,
    items.event_date,
    items.other_date,
    items.match_method,
    latest.action as resolution_action,
    latest.note as resolution_note,
    latest.linked_key as resolution_linked_key,
    latest.user_id as resolved_by_user_id,
    latest.created_at as resolved_at,
    latest.action is not null as is_resolved,
    case when latest.action is not null then 'resolved' else items.status end as effective_status
from items
left join {{ ref('stg_ops__companies') }} as companies on companies.company_id = items.company_id
left join latest
    on latest.company_id = items.company_id and latest.pair = items.pair and latest.item_key = items.item_key
