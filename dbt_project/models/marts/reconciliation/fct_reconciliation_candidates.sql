-- For every discrepancy item that misses a counterpart (or disagrees with it), the records of the other side
-- of its pair that could be it, ranked: same company, within the candidate window or of the same amount,
-- with a flag per criterion (amount within tolerance and same currency, date within the date tolerance,
-- reference equal, same EZ360 client) and score = number of criteria met. At most 3 per item. Cancelled
-- ERPNext documents are never candidates.
with items as (
    select * from {{ ref('fct_reconciliation_items') }}
    where is_discrepancy and pair <> 'ops_ledger~erp_gl' and pair <> 'stripe_balance_transaction~stripe_payout'
),

records as (
    select * from {{ ref('int_recon_records') }}
),

subjects as (
    -- the record the item is about, on the side that is present; candidates come from the other side
    select items.item_key, items.pair, items.company_id,
           case when items.left_id is not null then 'right' else 'left' end as search_side,
           own.record_id, own.currency, own.amount_minor, own.record_date, own.reference, own.client_key,
           items.right_id, items.left_id
    from items
    join records as own
        on own.pair = items.pair
        and own.side = case when items.left_id is not null then 'left' else 'right' end
        and own.record_id = coalesce(items.left_id, items.right_id)
),

scored as (
    select
        subjects.item_key,
        subjects.pair,
        other.side as candidate_side,
        other.record_id as candidate_id,
        other.amount_minor as candidate_amount_minor,
        other.record_date as candidate_date,
        other.currency = subjects.currency
            and {{ recon_amount_ok('other.amount_minor', 'subjects.amount_minor') }} as amount_ok,
        coalesce({{ recon_date_ok('subjects.record_date', 'other.record_date') }}, false) as date_ok,
        coalesce(other.reference = subjects.reference or other.reference = subjects.record_id
                 or other.record_id = subjects.reference, false) as reference_ok,
        coalesce(other.client_key = subjects.client_key, false) as customer_ok,
        abs({{ dbt.datediff('subjects.record_date', 'other.record_date', 'day') }}) as days_apart
    from subjects
    join records as other
        on other.pair = subjects.pair
        and other.side = subjects.search_side
        and (other.company_id = subjects.company_id or (other.company_id is null and subjects.company_id is null))
        and ({{ recon_in_window('subjects.record_date', 'other.record_date') }}
             or other.amount_minor = subjects.amount_minor)
        and other.record_id <> coalesce(subjects.right_id, '')
        and other.record_id <> coalesce(subjects.left_id, '')
),

ranked as (
    select
        scored.*,
        (case when amount_ok then 1 else 0 end) + (case when date_ok then 1 else 0 end)
        + (case when reference_ok then 1 else 0 end) + (case when customer_ok then 1 else 0 end) as score,
        row_number() over (
            partition by item_key
            order by (case when reference_ok then 1 else 0 end) + (case when amount_ok then 1 else 0 end)
                     + (case when date_ok then 1 else 0 end) + (case when customer_ok then 1 else 0 end) desc,
                     days_apart, candidate_id
        ) as candidate_rank
    from scored
)

select
    item_key || ':' || cast(candidate_rank as {{ dbt.type_string() }}) as candidate_key,
    item_key,
    pair,
    candidate_rank,
    candidate_side,
    candidate_id,
    cast(candidate_amount_minor as {{ dbt.type_bigint() }}) as candidate_amount_minor,
    candidate_date,
    amount_ok,
    date_ok,
    reference_ok,
    customer_ok,
    score
from ranked
where candidate_rank <= 3
