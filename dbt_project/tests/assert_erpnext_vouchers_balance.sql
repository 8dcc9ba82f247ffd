-- Accounting identity: debits = credits per ERPNext voucher and currency over the non-cancelled GL rows
-- (in minor units, after the one rounding rule). Returns the vouchers that do not balance.
{{ config(tags=['finance']) }}

select voucher_no, currency, sum(debit_minor) as debit_minor, sum(credit_minor) as credit_minor
from {{ ref('fct_gl_entries') }}
where not is_cancelled
group by voucher_no, currency
having sum(debit_minor) <> sum(credit_minor)
