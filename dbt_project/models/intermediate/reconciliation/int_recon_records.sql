-- Every record a reconciliation pair compares, in one shape, for candidate search: pair, side (left/right),
-- record id (the id items carry), company, currency, amount in minor units, date, reference, and the EZ360
-- client it concerns when known (customer criterion).
with map as (
    select * from {{ ref('int_source_company_map') }}
),

stripe_clients as (
    select customer_id, ez360_client_id from {{ ref('stg_stripe__customers') }}
),

erp_clients as (
    select erp_customer_id, cast(ez360_client_id as {{ dbt.type_string() }}) as ez360_client_id
    from {{ ref('stg_erpnext__customers') }}
),

charges as (
    select charges.*, map.company_id, stripe_clients.ez360_client_id
    from {{ ref('stg_stripe__charges') }} as charges
    left join map on map.source = 'stripe' and map.source_key = charges.account_id
    left join stripe_clients on stripe_clients.customer_id = charges.customer_id
    where charges.status in ('succeeded', 'pending')
),

payment_entries as (
    select entries.*, map.company_id, erp_clients.ez360_client_id
    from {{ ref('stg_erpnext__payment_entries') }} as entries
    left join map on map.source = 'erpnext' and map.source_key = entries.company
    left join erp_clients on erp_clients.erp_customer_id = entries.party
    where not entries.is_cancelled and entries.payment_type = 'Receive'
)

select 'ops_payment~stripe_charge' as pair, 'left' as side,
       coalesce(reference, cast(payment_id as {{ dbt.type_string() }})) as record_id, company_id, currency,
       amount_minor, received_on as record_date, stripe_charge_id as reference,
       cast(client_id as {{ dbt.type_string() }}) as client_key
from {{ ref('stg_ops__payments') }}
where method = 'stripe' or stripe_charge_id is not null
union all
select 'ops_payment~stripe_charge', 'right', charge_id, company_id, currency, amount_minor, created_on,
       coalesce(ez360_payment_ref, charge_id), ez360_client_id
from charges
union all
select 'stripe_charge~erp_payment_entry', 'left', charge_id, company_id, currency, amount_minor, created_on,
       charge_id, ez360_client_id
from charges
union all
select 'stripe_charge~erp_payment_entry', 'right', payment_entry_id, company_id, currency, received_amount_minor,
       posting_date, reference_no, ez360_client_id
from payment_entries
union all
select 'stripe_payout~erp_bank_transaction', 'left', payouts.payout_id, map.company_id, payouts.currency,
       payouts.amount_minor, payouts.arrival_date, payouts.payout_id, cast(null as {{ dbt.type_string() }})
from {{ ref('stg_stripe__payouts') }} as payouts
left join map on map.source = 'stripe' and map.source_key = payouts.account_id
where payouts.status <> 'canceled'
union all
select 'stripe_payout~erp_bank_transaction', 'right', lines.bank_transaction_id, map.company_id, lines.currency,
       lines.amount_minor, lines.transaction_date, lines.reference_number, cast(null as {{ dbt.type_string() }})
from {{ ref('stg_erpnext__bank_transactions') }} as lines
left join map on map.source = 'erpnext' and map.source_key = lines.company
where not lines.is_cancelled and lines.amount_minor > 0
union all
select 'stripe_payout~erp_bank_transaction', 'right', bank_statement_line_id, cast(null as {{ dbt.type_bigint() }}),
       currency, amount_minor, booking_date, reference, cast(null as {{ dbt.type_string() }})
from {{ ref('stg_files__bank_statement_lines') }}
where amount_minor > 0
union all
select 'stripe_refund~erp_journal_entry', 'left', refunds.refund_id, map.company_id, refunds.currency,
       refunds.amount_minor, refunds.created_on, refunds.refund_id, cast(null as {{ dbt.type_string() }})
from {{ ref('stg_stripe__refunds') }} as refunds
left join map on map.source = 'stripe' and map.source_key = refunds.account_id
union all
select 'stripe_refund~erp_journal_entry', 'right', journal_entry_id, company_id, currency, amount_minor,
       posting_date, cheque_no, cast(null as {{ dbt.type_string() }})
from {{ ref('int_erp_journal_entries') }}
where not is_cancelled
union all
select 'ops_invoice~erp_sales_invoice', 'left', invoices.invoice_number, invoices.company_id, invoices.currency,
       invoices.total_minor, invoices.issue_date, invoices.invoice_number,
       cast(invoices.client_id as {{ dbt.type_string() }})
from {{ ref('stg_ops__invoices') }} as invoices
where invoices.status <> 'draft' and invoices.deleted_at is null
union all
select 'ops_invoice~erp_sales_invoice', 'right', invoices.sales_invoice_id, map.company_id, invoices.currency,
       invoices.grand_total_minor, invoices.posting_date, invoices.sales_invoice_id, erp_clients.ez360_client_id
from {{ ref('stg_erpnext__sales_invoices') }} as invoices
left join map on map.source = 'erpnext' and map.source_key = invoices.company
left join erp_clients on erp_clients.erp_customer_id = invoices.erp_customer_id
where not invoices.is_cancelled and not invoices.is_return
