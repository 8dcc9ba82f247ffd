-- Pair stripe_balance_transaction~erp_gl_entry (fees): the Stripe fee of every balance transaction (sum of
-- its fee_details; its `fee` when Stripe sent no details) in the categories of
-- var('fee_reconciliation_categories'), against the ERPNext GL rows on the fee accounts
-- (var('erp_stripe_fee_account_names')) of the voucher that books it: a journal whose reference (cheque_no)
-- is the balance transaction, its source charge, or whose remark names the balance transaction.
-- Cancelled GL rows never count. No fee booking: `missing_in_erpnext`; fee differs: `amount_mismatch`;
-- booked in another month / beyond the date tolerance: `timing_difference`. A fee voucher naming a Stripe
-- object that has no balance transaction with a fee: `missing_in_stripe`.
with fee_details as (
    select balance_transaction_dlt_id, sum(amount_minor) as fee_minor
    from {{ ref('stg_stripe__balance_transaction_fee_details') }}
    group by balance_transaction_dlt_id
),

txns as (
    select
        txns.balance_transaction_id,
        txns.source_id,
        txns.currency,
        txns.created_on,
        coalesce(fee_details.fee_minor, txns.fee_minor) as fee_minor,
        map.company_id,
        map.source_company_key
    from {{ ref('stg_stripe__balance_transactions') }} as txns
    left join fee_details on fee_details.balance_transaction_dlt_id = txns.dlt_row_id
    left join {{ ref('int_source_company_map') }} as map
        on map.source = 'stripe' and map.source_key = txns.account_id
    where txns.reporting_category in {{ sql_string_list(var('fee_reconciliation_categories')) }}
      and coalesce(fee_details.fee_minor, txns.fee_minor) <> 0
),

fee_accounts as (
    select erp_account_id
    from {{ ref('stg_erpnext__accounts') }}
    where account_name in {{ sql_string_list(var('erp_stripe_fee_account_names')) }}
),

fee_vouchers as (
    select
        gl.voucher_no,
        min(gl.currency) as currency,
        min(gl.posting_date) as posting_date,
        sum(gl.debit_minor - gl.credit_minor) as fee_minor
    from {{ ref('stg_erpnext__gl_entries') }} as gl
    where not gl.is_cancelled
      and (gl.account in (select erp_account_id from fee_accounts)
           or {{ dbt.split_part('gl.account', "' - '", 1) }} in {{ sql_string_list(var('erp_stripe_fee_account_names')) }})
    group by gl.voucher_no
),

vouchers as (
    select
        fee_vouchers.*,
        journals.cheque_no,
        journals.user_remark,
        journals.company_id,
        journals.source_company_key
    from fee_vouchers
    left join {{ ref('int_erp_journal_entries') }} as journals
        on journals.journal_entry_id = fee_vouchers.voucher_no
),

links as (
    select txns.balance_transaction_id, vouchers.voucher_no
    from txns
    join vouchers
        on vouchers.cheque_no = txns.balance_transaction_id
        or vouchers.cheque_no = txns.source_id
        or vouchers.user_remark like '%' || txns.balance_transaction_id || '%'
),

per_txn as (
    select
        balance_transaction_id,
        count(*) as voucher_count,
        min(voucher_no) as voucher_no,
        {{ dbt.listagg("voucher_no", "' '", "order by voucher_no") }} as voucher_nos
    from links
    group by balance_transaction_id
),

items as (
    select
        txns.*,
        vouchers.voucher_no,
        vouchers.fee_minor as booked_fee_minor,
        vouchers.currency as booked_currency,
        vouchers.posting_date,
        case
            when per_txn.balance_transaction_id is null then 'missing_in_erpnext'
            when per_txn.voucher_count > 1 then 'duplicate'
            when vouchers.currency <> txns.currency
                 or not {{ recon_amount_ok('vouchers.fee_minor', 'txns.fee_minor') }} then 'amount_mismatch'
            when not {{ recon_date_ok('txns.created_on', 'vouchers.posting_date') }} then 'timing_difference'
            else 'matched'
        end as item_status
    from txns
    left join per_txn on per_txn.balance_transaction_id = txns.balance_transaction_id
    left join vouchers on vouchers.voucher_no = per_txn.voucher_no
)

select
    'stripe_balance_transaction~erp_gl_entry' as pair,
    'stripe_balance_transaction~erp_gl_entry:stripe:' || balance_transaction_id as item_key,
    company_id,
    source_company_key,
    item_status as status,
    currency,
    fee_minor as amount_minor,
    booked_fee_minor as other_amount_minor,
    fee_minor - coalesce(booked_fee_minor, 0) as difference_minor,
    'stripe_balance_transaction' as left_source,
    balance_transaction_id as left_id,
    'erp_gl_entry' as right_source,
    voucher_no as right_id,
    source_id as related_ids,
    created_on as event_date,
    posting_date as other_date,
    case when voucher_no is not null then 'reference' end as match_method
from items

union all

select
    'stripe_balance_transaction~erp_gl_entry',
    'stripe_balance_transaction~erp_gl_entry:erpnext:' || voucher_no,
    company_id,
    source_company_key,
    'missing_in_stripe',
    currency,
    fee_minor,
    cast(null as {{ dbt.type_bigint() }}),
    fee_minor,
    'stripe_balance_transaction',
    cast(null as {{ dbt.type_string() }}),
    'erp_gl_entry',
    voucher_no,
    cheque_no,
    posting_date,
    cast(null as date),
    cast(null as {{ dbt.type_string() }})
from vouchers
where not exists (select 1 from links where links.voucher_no = vouchers.voucher_no)
