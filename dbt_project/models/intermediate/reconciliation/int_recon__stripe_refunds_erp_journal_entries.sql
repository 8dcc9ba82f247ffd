-- Pair stripe_refund~erp_journal_entry: every Stripe refund against the ERPNext journal entry that books it
-- (reference / cheque_no = the refund id, or the id in the remark). Cancelled journals never match.
-- No journal: `missing_in_erpnext` (the refunded charge in related_ids). A refund that failed or was
-- canceled but is booked: `failed`; not booked: no item (nothing happened). Pending refunds: `pending`.
-- A journal naming a refund Stripe does not have: `missing_in_stripe`.
with refunds as (
    select refunds.*, map.company_id, map.source_company_key
    from {{ ref('stg_stripe__refunds') }} as refunds
    left join {{ ref('int_source_company_map') }} as map
        on map.source = 'stripe' and map.source_key = refunds.account_id
),

journals as (
    select * from {{ ref('int_erp_journal_entries') }}
),

links as (
    select refunds.refund_id, journals.journal_entry_id, journals.is_cancelled
    from refunds
    join journals
        on journals.cheque_no = refunds.refund_id
        or journals.user_remark like '%' || refunds.refund_id || '%'
),

per_refund as (
    select
        refund_id,
        sum(case when is_cancelled then 0 else 1 end) as live_journals,
        min(case when not is_cancelled then journal_entry_id end) as journal_entry_id,
        {{ dbt.listagg("journal_entry_id", "' '", "order by journal_entry_id") }} as journal_ids
    from links
    group by refund_id
),

items as (
    select
        refunds.*,
        journals.journal_entry_id,
        journals.amount_minor as journal_amount_minor,
        journals.currency as journal_currency,
        journals.posting_date,
        per_refund.journal_ids,
        case
            when refunds.status in ('failed', 'canceled') and coalesce(per_refund.live_journals, 0) > 0 then 'failed'
            when refunds.status in ('failed', 'canceled') then null
            when refunds.status = 'pending' then 'pending'
            when coalesce(per_refund.live_journals, 0) = 0 then 'missing_in_erpnext'
            when per_refund.live_journals > 1 then 'duplicate'
            when journals.currency <> refunds.currency
                 or not {{ recon_amount_ok('journals.amount_minor', 'refunds.amount_minor') }} then 'amount_mismatch'
            when not {{ recon_date_ok('refunds.created_on', 'journals.posting_date') }} then 'timing_difference'
            else 'matched'
        end as item_status
    from refunds
    left join per_refund on per_refund.refund_id = refunds.refund_id
    left join journals on journals.journal_entry_id = per_refund.journal_entry_id
)

select
    'stripe_refund~erp_journal_entry' as pair,
    'stripe_refund~erp_journal_entry:stripe:' || refund_id as item_key,
    company_id,
    source_company_key,
    item_status as status,
    currency,
    amount_minor,
    journal_amount_minor as other_amount_minor,
    amount_minor - coalesce(journal_amount_minor, 0) as difference_minor,
    'stripe_refund' as left_source,
    refund_id as left_id,
    'erp_journal_entry' as right_source,
    journal_entry_id as right_id,
    {{ dbt.concat(["charge_id", "coalesce(' ' || journal_ids, '')"]) }} as related_ids,
    created_on as event_date,
    posting_date as other_date,
    case when journal_entry_id is not null then 'reference' end as match_method
from items
where item_status is not null

union all

select
    'stripe_refund~erp_journal_entry',
    'stripe_refund~erp_journal_entry:erpnext:' || journal_entry_id,
    company_id,
    source_company_key,
    'missing_in_stripe',
    currency,
    amount_minor,
    cast(null as {{ dbt.type_bigint() }}),
    amount_minor,
    'stripe_refund',
    cast(null as {{ dbt.type_string() }}),
    'erp_journal_entry',
    journal_entry_id,
    cheque_no,
    posting_date,
    cast(null as date),
    cast(null as {{ dbt.type_string() }})
from journals
where not is_cancelled
  and cheque_no like 're\_%' escape '\'
  and not exists (select 1 from links where links.journal_entry_id = journals.journal_entry_id)
