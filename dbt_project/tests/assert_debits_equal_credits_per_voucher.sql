-- Accounting identity: debits = credits per voucher, in the ops ledger (posted journal entries) and in the
-- ERPNext GL (non-cancelled rows, per voucher and currency). Returns the vouchers that do not balance.
{{ config(tags=['finance']) }}

select 'ops' as ledger, cast(lines.journal_entry_id as {{ dbt.type_string() }}) as voucher,
       sum(lines.debit_minor) as debit_minor, sum(lines.credit_minor) as credit_minor
from {{ ref('stg_ops__journal_lines') }} as lines
join {{ ref('stg_ops__journal_entries') }} as entries on entries.journal_entry_id = lines.journal_entry_id
where entries.status = 'posted'
group by lines.journal_entry_id
having sum(lines.debit_minor) <> sum(lines.credit_minor)

union all

select 'erpnext', voucher_no || ' ' || currency, sum(debit_minor), sum(credit_minor)
from {{ ref('fct_gl_entries') }}
where not is_cancelled
group by voucher_no, currency
having sum(debit_minor) <> sum(credit_minor)
