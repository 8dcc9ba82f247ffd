{{ config(materialized='incremental', unique_key='gl_entry_id', on_schema_change='fail') }}
-- One row per ERPNext GL entry, debit and credit in integer minor units of the account currency (ERPNext's
-- decimals rounded half away from zero, macro to_minor), with the EZ360 company. Cancelled rows (and the
-- reversing rows ERPNext posts on cancel) are kept and flagged; sums for reporting exclude them.
-- Incremental on Frappe's `modified` stamp: a cancellation or amendment re-modifies the row, which then
-- replaces its earlier version; `dbt build --full-refresh` rebuilds the same rows.
select
    gl.gl_entry_id,
    map.company_id,
    map.source_company_key,
    gl.company,
    gl.account,
    gl.posting_date,
    cast({{ dbt.date_trunc('month', 'gl.posting_date') }} as date) as posting_month,
    gl.currency,
    gl.debit_minor,
    gl.credit_minor,
    gl.voucher_type,
    gl.voucher_no,
    gl.party_type,
    gl.party,
    gl.is_cancelled,
    gl.modified_at
from {{ ref('stg_erpnext__gl_entries') }} as gl
left join {{ ref('int_source_company_map') }} as map on map.source = 'erpnext' and map.source_key = gl.company
{% if is_incremental() %}
where gl.modified_at > (select max(modified_at) from {{ this }})
{% endif %}
