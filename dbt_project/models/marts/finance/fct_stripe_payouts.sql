-- One row per Stripe payout with the net of the balance transactions it settles and its reconciliation
-- status against those transactions and the bank (fct_reconciliation_items).
with settled as (
    select payout_id, sum(net_minor) as settled_net_minor, count(*) as transaction_count
    from {{ ref('fct_stripe_balance_transactions') }}
    where payout_id is not null
    group by payout_id
),

recon as (
    select left_id as payout_id,
           max(case when pair = 'stripe_payout~erp_bank_transaction' then status end) as bank_status,
           max(case when pair = 'stripe_balance_transaction~stripe_payout' then status end) as settlement_status
    from {{ ref('fct_reconciliation_items') }}
    where pair in ('stripe_payout~erp_bank_transaction', 'stripe_balance_transaction~stripe_payout')
    group by left_id
)

select
    payouts.payout_id,
    payouts.account_id,
    map.company_id,
    map.source_company_key,
    payouts.currency,
    {{ currency_exponent('payouts.currency') }} as currency_exponent,
    payouts.amount_minor,
    payouts.status,
    payouts.status = 'failed' as is_failed,
    payouts.failure_code,
    payouts.failure_balance_transaction_id,
    payouts.is_automatic,
    payouts.created_on,
    payouts.arrival_date,
    cast(settled.settled_net_minor as {{ dbt.type_bigint() }}) as settled_net_minor,
    cast(coalesce(settled.transaction_count, 0) as {{ dbt.type_bigint() }}) as transaction_count,
    recon.settlement_status,
    recon.bank_status
from {{ ref('stg_stripe__payouts') }} as payouts
left join settled on settled.payout_id = payouts.payout_id
left join recon on recon.payout_id = payouts.payout_id
left join {{ ref('int_source_company_map') }} as map on map.source = 'stripe' and map.source_key = payouts.account_id
