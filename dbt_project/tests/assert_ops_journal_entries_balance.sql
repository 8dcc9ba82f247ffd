-- Accounting identity: debits = credits per posted ops journal entry. Returns the entries that do not balance.
{{ config(tags=['finance']) }}

select lines.journal_entry_id, sum(lines.debit_minor) as debit_minor, sum(lines.credit_minor) as credit_minor
from {{ ref('stg_ops__journal_lines') }} as lines
join {{ ref('stg_ops__journal_entries') }} as entries on entries.journal_entry_id = lines.journal_entry_id
where entries.status = 'posted'
group by lines.journal_entry_id
having sum(lines.debit_minor) <> sum(lines.credit_minor)
