-- Pair stripe_charge~erp_payment_entry: every successful Stripe charge against ERPNext Payment Entries
-- (received). A payment entry belongs to a charge when its reference_no is the charge id or its payment
-- intent id. Cancelled payment entries never match: a charge whose only entries are cancelled is
-- `missing_in_erpnext` (the cancelled names are listed in related_ids). The amount agrees with the charge
-- (presentment currency) or with its balance transaction (settlement currency, when the ERP books that).
-- A posting in another month than the charge, or more than the date tolerance apart: `timing_difference`.
-- An ERPNext receipt that names a Stripe object no charge has: `missing_in_stripe`.
with charges as (
    select
        charges.*,
        map.company_id,
        map.source_company_key,
        txns.amount_minor as settled_amount_minor,
        txns.currency as settled_currency
    from {{ ref('stg_stripe__charges') }} as charges
    left join {{ ref('int_source_company_map') }} as map
        on map.source = 'stripe' and map.source_key = charges.account_id
    left join {{ ref('stg_stripe__balance_transactions') }} as txns
        on txns.balance_transaction_id = charges.balance_transaction_id
    where charges.status = 'succeeded'
),

entries as (
    select entries.*, map.company_id, map.source_company_key
    from {{ ref('stg_erpnext__payment_entries') }} as entries
    left join {{ ref('int_source_company_map') }} as map
        on map.source = 'erpnext' and map.source_key = entries.company
    where entries.payment_type = 'Receive'
),

links as (
    select charges.charge_id, entries.payment_entry_id, entries.is_cancelled
    from charges
    join entries
        on entries.reference_no = charges.charge_id
        or (charges.payment_intent_id is not null and entries.reference_no = charges.payment_intent_id)
),

per_charge as (
    select
        charge_id,
        sum(case when is_cancelled then 0 else 1 end) as live_entries,
        {{ dbt.listagg("payment_entry_id", "' '", "order by payment_entry_id") }} as entry_ids
    from links
    group by charge_id
),

first_live as (
    select charge_id, payment_entry_id,
           row_number() over (partition by charge_id order by payment_entry_id) as entry_order
    from links
    where not is_cancelled
),

charge_items as (
    select
        charges.*,
        entries.payment_entry_id,
        entries.currency as entry_currency,
        entries.received_amount_minor,
        entries.posting_date,
        per_charge.entry_ids,
        case
            when coalesce(per_charge.live_entries, 0) = 0 then 'missing_in_erpnext'
            when per_charge.live_entries > 1 then 'duplicate'
            when not ((entries.currency = charges.currency
                       and {{ recon_amount_ok('entries.received_amount_minor', 'charges.amount_minor') }})
                      or (entries.currency = charges.settled_currency
                          and {{ recon_amount_ok('entries.received_amount_minor', 'charges.settled_amount_minor') }}))
                then 'amount_mismatch'
            when not {{ recon_date_ok('charges.created_on', 'entries.posting_date') }} then 'timing_difference'
            else 'matched'
        end as item_status
    from charges
    left join per_charge on per_charge.charge_id = charges.charge_id
    left join first_live on first_live.charge_id = charges.charge_id and first_live.entry_order = 1
    left join entries on entries.payment_entry_id = first_live.payment_entry_id
),

orphans as (
    select entries.*
    from entries
    where not entries.is_cancelled
      and (entries.reference_no like 'ch\_%' escape '\' or entries.reference_no like 'py\_%' escape '\'
           or entries.reference_no like 'pi\_%' escape '\' or lower(entries.mode_of_payment) = 'stripe')
      and not exists (select 1 from links where links.payment_entry_id = entries.payment_entry_id)
)

select
    'stripe_charge~erp_payment_entry' as pair,
    'stripe_charge~erp_payment_entry:stripe:' || charge_id as item_key,
    company_id,
    source_company_key,
    item_status as status,
    currency,
    amount_minor,
    received_amount_minor as other_amount_minor,
    amount_minor - coalesce(received_amount_minor, 0) as difference_minor,
    'stripe_charge' as left_source,
    charge_id as left_id,
    'erp_payment_entry' as right_source,
    payment_entry_id as right_id,
    entry_ids as related_ids,
    created_on as event_date,
    posting_date as other_date,
    case when payment_entry_id is not null then 'reference' end as match_method
from charge_items

union all

select
    'stripe_charge~erp_payment_entry',
    'stripe_charge~erp_payment_entry:erpnext:' || payment_entry_id,
    company_id,
    source_company_key,
    'missing_in_stripe',
    currency,
    received_amount_minor,
    cast(null as {{ dbt.type_bigint() }}),
    received_amount_minor,
    'stripe_charge',
    cast(null as {{ dbt.type_string() }}),
    'erp_payment_entry',
    payment_entry_id,
    reference_no,
    posting_date,
    cast(null as date),
    cast(null as {{ dbt.type_string() }})
from orphans
