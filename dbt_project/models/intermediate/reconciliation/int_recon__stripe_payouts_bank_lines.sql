-- Pair stripe_payout~erp_bank_transaction: every payout against the bank lines (ERPNext Bank Transactions,
-- and bank statement export files) that show Stripe money arriving.
-- A bank line belongs to a payout when its reference is the payout id; failing that, a line of the same
-- company, currency and amount within the candidate window (closest date, each line used once).
-- failed payout: `failed` (never matched, even when a line exists). No line yet: `pending` until
-- arrival_date + reconciliation_bank_grace_days, then `missing_in_bank`. Line amount differs:
-- `amount_mismatch`; line later/earlier than the date tolerance (or in another month): `timing_difference`.
-- A Stripe-looking bank line no payout explains: `missing_in_stripe`.
with payouts as (
    select payouts.*, map.company_id, map.source_company_key
    from {{ ref('stg_stripe__payouts') }} as payouts
    left join {{ ref('int_source_company_map') }} as map
        on map.source = 'stripe' and map.source_key = payouts.account_id
    where payouts.status <> 'canceled'
),

bank_lines as (
    select
        'erp_bank_transaction' as line_source,
        lines.bank_transaction_id as line_id,
        map.company_id,
        map.source_company_key,
        lines.transaction_date as booked_on,
        lines.currency,
        lines.amount_minor,
        lines.reference_number as reference,
        lines.description
    from {{ ref('stg_erpnext__bank_transactions') }} as lines
    left join {{ ref('int_source_company_map') }} as map
        on map.source = 'erpnext' and map.source_key = lines.company
    where not lines.is_cancelled
    union all
    select
        'bank_statement_line',
        lines.bank_statement_line_id,
        cast(null as {{ dbt.type_bigint() }}),
        'files:' || lines.bank_account,
        lines.booking_date,
        lines.currency,
        lines.amount_minor,
        lines.reference,
        lines.description
    from {{ ref('stg_files__bank_statement_lines') }} as lines
),

stripe_lines as (
    select *
    from bank_lines
    where reference like 'po\_%' escape '\' or upper(coalesce(description, '')) like '%STRIPE%'
),

by_reference as (
    select payouts.payout_id, stripe_lines.line_id
    from payouts
    join stripe_lines on stripe_lines.reference = payouts.payout_id
),

fallback_candidates as (
    select
        payouts.payout_id,
        stripe_lines.line_id,
        row_number() over (
            partition by payouts.payout_id
            order by abs({{ dbt.datediff('payouts.arrival_date', 'stripe_lines.booked_on', 'day') }}), stripe_lines.line_id
        ) as payout_choice,
        row_number() over (
            partition by stripe_lines.line_id
            order by abs({{ dbt.datediff('payouts.arrival_date', 'stripe_lines.booked_on', 'day') }}), payouts.payout_id
        ) as line_choice
    from payouts
    join stripe_lines
        on stripe_lines.currency = payouts.currency
        and stripe_lines.amount_minor = payouts.amount_minor
        and stripe_lines.company_id = payouts.company_id
        and {{ recon_in_window('payouts.arrival_date', 'stripe_lines.booked_on') }}
    where not exists (select 1 from by_reference where by_reference.payout_id = payouts.payout_id)
      and not exists (select 1 from by_reference where by_reference.line_id = stripe_lines.line_id)
),

links as (
    select payout_id, line_id, 'reference' as match_method from by_reference
    union all
    select payout_id, line_id, 'amount_and_date' from fallback_candidates where payout_choice = 1 and line_choice = 1
),

per_payout as (
    select
        links.payout_id,
        count(*) as line_count,
        min(links.line_id) as line_id,
        min(links.match_method) as match_method,
        {{ dbt.listagg("links.line_id", "' '", "order by links.line_id") }} as line_ids
    from links
    group by links.payout_id
),

payout_items as (
    select
        payouts.*,
        per_payout.line_count,
        per_payout.line_ids,
        per_payout.match_method,
        lines.line_id,
        lines.amount_minor as line_amount_minor,
        lines.currency as line_currency,
        lines.booked_on,
        case
            when payouts.status = 'failed' then 'failed'
            when per_payout.payout_id is null and (
                payouts.status in ('pending', 'in_transit')
                or {{ dbt.dateadd('day', var('reconciliation_bank_grace_days'), 'payouts.arrival_date') }}
                   >= {{ recon_as_of() }}) then 'pending'
            when per_payout.payout_id is null then 'missing_in_bank'
            when per_payout.line_count > 1 then 'duplicate'
            when lines.currency <> payouts.currency
                 or not {{ recon_amount_ok('lines.amount_minor', 'payouts.amount_minor') }} then 'amount_mismatch'
            when not {{ recon_date_ok('payouts.arrival_date', 'lines.booked_on') }} then 'timing_difference'
            else 'matched'
        end as item_status
    from payouts
    left join per_payout on per_payout.payout_id = payouts.payout_id
    left join stripe_lines as lines on lines.line_id = per_payout.line_id
)

select
    'stripe_payout~erp_bank_transaction' as pair,
    'stripe_payout~erp_bank_transaction:stripe:' || payout_id as item_key,
    company_id,
    source_company_key,
    item_status as status,
    currency,
    amount_minor,
    line_amount_minor as other_amount_minor,
    amount_minor - coalesce(line_amount_minor, 0) as difference_minor,
    'stripe_payout' as left_source,
    payout_id as left_id,
    'erp_bank_transaction' as right_source,
    line_id as right_id,
    nullif(trim({{ dbt.concat(["coalesce(failure_balance_transaction_id, '')", "' '", "coalesce(line_ids, '')"]) }}), '')
        as related_ids,
    arrival_date as event_date,
    booked_on as other_date,
    match_method
from payout_items

union all

select
    'stripe_payout~erp_bank_transaction',
    'stripe_payout~erp_bank_transaction:' || line_source || ':' || line_id,
    company_id,
    source_company_key,
    'missing_in_stripe',
    currency,
    amount_minor,
    cast(null as {{ dbt.type_bigint() }}),
    amount_minor,
    'stripe_payout',
    cast(null as {{ dbt.type_string() }}),
    line_source,
    line_id,
    reference,
    booked_on,
    cast(null as date),
    cast(null as {{ dbt.type_string() }})
from stripe_lines
where not exists (select 1 from links where links.line_id = stripe_lines.line_id)
