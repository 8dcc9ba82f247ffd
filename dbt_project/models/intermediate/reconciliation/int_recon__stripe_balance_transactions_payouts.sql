-- Pair stripe_balance_transaction~stripe_payout: per payout, the net of the balance transactions it settles
-- (raw_stripe.payout_balance_transactions, without the payout's own `payout` transaction) must equal the
-- payout amount. A failed payout is `failed` whatever its sums (its payout_failure transaction in
-- related_ids); a pending / in-transit payout is `pending` until its sums can be read. A manual payout
-- (Stripe lists no transactions for it) cannot be checked this way and stays `pending`. Canceled payouts
-- never moved money and are left out.
with payouts as (
    select payouts.*, map.company_id, map.source_company_key
    from {{ ref('stg_stripe__payouts') }} as payouts
    left join {{ ref('int_source_company_map') }} as map
        on map.source = 'stripe' and map.source_key = payouts.account_id
    where payouts.status <> 'canceled'
),

members as (
    select
        links.payout_id,
        count(*) as transaction_count,
        sum(txns.net_minor) as settled_net_minor,
        min(txns.currency) as settled_currency
    from {{ ref('stg_stripe__payout_balance_transactions') }} as links
    join {{ ref('stg_stripe__balance_transactions') }} as txns
        on txns.balance_transaction_id = links.balance_transaction_id
    where not (txns.transaction_type = 'payout' and txns.source_id = links.payout_id)
    group by links.payout_id
)

select
    'stripe_balance_transaction~stripe_payout' as pair,
    'stripe_balance_transaction~stripe_payout:stripe:' || payouts.payout_id as item_key,
    payouts.company_id,
    payouts.source_company_key,
    case
        when payouts.status = 'failed' then 'failed'
        when members.payout_id is null then 'pending'
        when members.settled_currency <> payouts.currency
             or not {{ recon_amount_ok('members.settled_net_minor', 'payouts.amount_minor') }} then 'amount_mismatch'
        else 'matched'
    end as status,
    payouts.currency,
    members.settled_net_minor as amount_minor,
    payouts.amount_minor as other_amount_minor,
    coalesce(members.settled_net_minor, 0) - payouts.amount_minor as difference_minor,
    'stripe_balance_transaction' as left_source,
    payouts.payout_id as left_id,
    'stripe_payout' as right_source,
    payouts.payout_id as right_id,
    payouts.failure_balance_transaction_id as related_ids,
    payouts.created_on as event_date,
    payouts.arrival_date as other_date,
    case when members.payout_id is not null then 'payout_membership' end as match_method
from payouts
left join members on members.payout_id = payouts.payout_id
