-- Pair ops_ledger~erp_gl: the ops general ledger against ERPNext's, per company, account group
-- (seed ledger_account_map), calendar month and currency: net movement (debit - credit) in minor units.
-- Only posted ops entries and non-cancelled ERPNext GL rows count. When a row differs, related_ids names
-- the documents that explain it (ops invoice numbers / payment references / credit note numbers, and the
-- ERPNext vouchers), found by comparing the two ledgers document by document. A row whose differing
-- documents agree over all months (booked in another month) is `timing_difference`, else `amount_mismatch`.
with account_map as (
    select account_group, source, account_code_or_name from {{ ref('ledger_account_map') }}
),

ops_documents as (
    select
        entries.journal_entry_id,
        case entries.source_type
            when 'invoice' then invoices.invoice_number
            when 'payment' then coalesce(payments.reference, 'payment:' || cast(payments.payment_id as {{ dbt.type_string() }}))
            when 'credit_note' then credit_notes.credit_note_number
            else 'ops-journal:' || cast(entries.journal_entry_id as {{ dbt.type_string() }})
        end as document_key
    from {{ ref('stg_ops__journal_entries') }} as entries
    left join {{ ref('stg_ops__invoices') }} as invoices
        on entries.source_type = 'invoice' and invoices.invoice_id = entries.source_id
    left join {{ ref('stg_ops__payments') }} as payments
        on entries.source_type = 'payment' and payments.payment_id = entries.source_id
    left join {{ ref('stg_ops__credit_notes') }} as credit_notes
        on entries.source_type = 'credit_note' and credit_notes.credit_note_id = entries.source_id
),

ops_lines as (
    select
        entries.company_id,
        account_map.account_group,
        cast({{ dbt.date_trunc('month', 'entries.entry_date') }} as date) as ledger_month,
        entries.currency,
        ops_documents.document_key,
        cast(null as {{ dbt.type_string() }}) as voucher_no,
        lines.debit_minor - lines.credit_minor as net_minor
    from {{ ref('stg_ops__journal_lines') }} as lines
    join {{ ref('stg_ops__journal_entries') }} as entries on entries.journal_entry_id = lines.journal_entry_id
    join {{ ref('stg_ops__accounts') }} as accounts on accounts.account_id = lines.account_id
    join account_map on account_map.source = 'ops' and account_map.account_code_or_name = accounts.code
    join ops_documents on ops_documents.journal_entry_id = entries.journal_entry_id
    where entries.status = 'posted'
),

erp_accounts as (
    select accounts.erp_account_id, account_map.account_group
    from {{ ref('stg_erpnext__accounts') }} as accounts
    join account_map on account_map.source = 'erpnext' and account_map.account_code_or_name = accounts.account_name
),

erp_lines as (
    select
        map.company_id,
        map.source_company_key,
        erp_accounts.account_group,
        cast({{ dbt.date_trunc('month', 'gl.posting_date') }} as date) as ledger_month,
        gl.currency,
        case gl.voucher_type
            when 'Payment Entry' then coalesce(entries.reference_no, gl.voucher_no)
            when 'Journal Entry' then coalesce(journals.cheque_no, gl.voucher_no)
            else gl.voucher_no
        end as document_key,
        gl.voucher_no,
        gl.debit_minor - gl.credit_minor as net_minor
    from {{ ref('stg_erpnext__gl_entries') }} as gl
    join erp_accounts on erp_accounts.erp_account_id = gl.account
    left join {{ ref('stg_erpnext__payment_entries') }} as entries
        on gl.voucher_type = 'Payment Entry' and entries.payment_entry_id = gl.voucher_no
    left join {{ ref('stg_erpnext__journal_entries') }} as journals
        on gl.voucher_type = 'Journal Entry' and journals.journal_entry_id = gl.voucher_no
    left join {{ ref('int_source_company_map') }} as map
        on map.source = 'erpnext' and map.source_key = gl.company
    where not gl.is_cancelled
),

documents as (
    select
        company_id, account_group, ledger_month, currency, document_key,
        sum(ops_net_minor) as ops_net_minor,
        sum(erp_net_minor) as erp_net_minor,
        max(voucher_no) as voucher_no
    from (
        select company_id, account_group, ledger_month, currency, document_key, net_minor as ops_net_minor,
               0 as erp_net_minor, voucher_no
        from ops_lines
        union all
        select company_id, account_group, ledger_month, currency, document_key, 0, net_minor, voucher_no
        from erp_lines
    ) as both_ledgers
    group by company_id, account_group, ledger_month, currency, document_key
),

document_totals as (
    select company_id, account_group, currency, document_key,
           sum(ops_net_minor) - sum(erp_net_minor) as all_time_difference_minor
    from documents
    group by company_id, account_group, currency, document_key
),

differing as (
    select
        documents.*,
        document_totals.all_time_difference_minor,
        {{ dbt.concat(["documents.document_key", "coalesce(' ' || documents.voucher_no, '')"]) }} as named_ids
    from documents
    join document_totals
        on document_totals.company_id = documents.company_id
        and document_totals.account_group = documents.account_group
        and document_totals.currency = documents.currency
        and document_totals.document_key = documents.document_key
    where documents.ops_net_minor <> documents.erp_net_minor
),

months as (
    select
        company_id, account_group, ledger_month, currency,
        sum(ops_net_minor) as ops_net_minor,
        sum(erp_net_minor) as erp_net_minor
    from documents
    group by company_id, account_group, ledger_month, currency
),

explained as (
    select
        company_id, account_group, ledger_month, currency,
        {{ dbt.listagg("named_ids", "' '", "order by named_ids") }} as related_ids,
        sum(case when all_time_difference_minor <> 0 then 1 else 0 end) as lasting_differences
    from differing
    group by company_id, account_group, ledger_month, currency
),

source_keys as (
    select distinct company_id, source_company_key from erp_lines
)

select
    'ops_ledger~erp_gl' as pair,
    'ops_ledger~erp_gl:' || coalesce(cast(months.company_id as {{ dbt.type_string() }}), 'unmapped') || ':'
        || months.account_group || ':' || cast(months.ledger_month as {{ dbt.type_string() }}) || ':' || months.currency
        as item_key,
    months.company_id,
    source_keys.source_company_key,
    case
        when {{ recon_amount_ok('months.ops_net_minor', 'months.erp_net_minor') }} then 'matched'
        when coalesce(explained.lasting_differences, 1) = 0 then 'timing_difference'
        else 'amount_mismatch'
    end as status,
    months.currency,
    months.ops_net_minor as amount_minor,
    months.erp_net_minor as other_amount_minor,
    months.ops_net_minor - months.erp_net_minor as difference_minor,
    'ops_ledger' as left_source,
    months.account_group || ' ' || cast(months.ledger_month as {{ dbt.type_string() }}) as left_id,
    'erp_gl' as right_source,
    months.account_group || ' ' || cast(months.ledger_month as {{ dbt.type_string() }}) as right_id,
    case when not {{ recon_amount_ok('months.ops_net_minor', 'months.erp_net_minor') }} then explained.related_ids end
        as related_ids,
    months.ledger_month as event_date,
    months.ledger_month as other_date,
    'account_group_month' as match_method
from months
left join explained
    on explained.company_id = months.company_id
    and explained.account_group = months.account_group
    and explained.ledger_month = months.ledger_month
    and explained.currency = months.currency
left join source_keys on source_keys.company_id = months.company_id
