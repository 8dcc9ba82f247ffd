-- ERPNext journal entries with their amount in integer minor units: the debit total of their GL rows (in
-- the rows' account currency), or of their account rows converted in the company currency when the GL
-- rows are missing. Cancelled journals are kept (flagged) and never match anything.
with gl as (
    select
        voucher_no,
        min(currency) as currency,
        sum(debit_minor) as debit_minor
    from {{ ref('stg_erpnext__gl_entries') }}
    where voucher_type = 'Journal Entry'
    group by voucher_no
),

companies as (
    select erp_company_id, default_currency from {{ ref('stg_erpnext__companies') }}
)

select
    journals.journal_entry_id,
    journals.company,
    map.company_id,
    map.source_company_key,
    journals.posting_date,
    journals.cheque_no,
    journals.user_remark,
    coalesce(gl.currency, companies.default_currency) as currency,
    cast(coalesce(gl.debit_minor, {{ to_minor('journals.total_debit_amount', 'companies.default_currency') }})
         as {{ dbt.type_bigint() }}) as amount_minor,
    journals.is_cancelled
from {{ ref('stg_erpnext__journal_entries') }} as journals
left join gl on gl.voucher_no = journals.journal_entry_id
left join companies on companies.erp_company_id = journals.company
left join {{ ref('int_source_company_map') }} as map
    on map.source = 'erpnext' and map.source_key = journals.company
