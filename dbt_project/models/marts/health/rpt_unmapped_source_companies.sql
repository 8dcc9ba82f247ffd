-- Data health: Stripe accounts and ERPNext companies that no EZ360 company claims (no setting, metadata or
-- name rule maps them). Their data still lands and is reconciled under source_company_key; this lists them
-- with how much of their data the warehouse holds.
with unmapped as (
    select source, source_key, source_company_key
    from {{ ref('int_source_company_map') }}
    where company_id is null
),

stripe_rows as (
    select account_id as source_key, count(*) as row_count, min(created_at) as first_seen_at
    from {{ ref('stg_stripe__balance_transactions') }}
    group by account_id
),

erp_rows as (
    select company as source_key, count(*) as row_count, min(posting_date) as first_posting_date
    from {{ ref('stg_erpnext__gl_entries') }}
    group by company
)

select
    unmapped.source,
    unmapped.source_key,
    unmapped.source_company_key,
    cast(coalesce(stripe_rows.row_count, erp_rows.row_count, 0) as {{ dbt.type_bigint() }}) as row_count,
    coalesce(cast(stripe_rows.first_seen_at as date), erp_rows.first_posting_date) as first_seen_on
from unmapped
left join stripe_rows on unmapped.source = 'stripe' and stripe_rows.source_key = unmapped.source_key
left join erp_rows on unmapped.source = 'erpnext' and erp_rows.source_key = unmapped.source_key
