-- Which EZ360 company each Stripe account and ERPNext company belongs to. Rules, first that applies wins:
-- 1 `setting` (EZ360_STRIPE_COMPANY_MAP / EZ360_ERPNEXT_COMPANY_MAP, raw_files.source_companies),
-- 2 `stripe_metadata` (the account's metadata.ez360_company slug) / `erp_company_name` (ERPNext company name
--   equal to an EZ360 company's name), 3 `ops_stripe_account` (companies.stripe_account_id).
-- A source company no rule claims keeps a row with company_id null: it is still reconciled, under its own
-- source_company_key, and listed by rpt_unmapped_source_companies.
with companies as (
    select * from {{ ref('stg_ops__companies') }}
),

stripe_keys as (
    select account_id as source_key from {{ ref('stg_stripe__balance_transactions') }}
    union
    select account_id from {{ ref('stg_stripe__charges') }}
    union
    select account_id from {{ ref('stg_stripe__payouts') }}
    union
    select stripe_account_id from {{ ref('stg_stripe__accounts') }}
),

erp_keys as (
    select erp_company_id as source_key from {{ ref('stg_erpnext__companies') }}
    union
    select company from {{ ref('stg_erpnext__gl_entries') }}
    union
    select company from {{ ref('stg_erpnext__sales_invoices') }}
    union
    select company from {{ ref('stg_erpnext__payment_entries') }}
    union
    select company from {{ ref('stg_erpnext__bank_transactions') }}
),

keys as (
    select 'stripe' as source, source_key from stripe_keys where source_key is not null
    union all
    select 'erpnext' as source, source_key from erp_keys where source_key is not null
),

settings as (
    select source, source_key, company_slug from {{ ref('stg_files__source_companies') }}
),

candidates as (
    select keys.source, keys.source_key, companies.company_id, 1 as priority, 'setting' as rule
    from keys
    join settings on settings.source = keys.source and settings.source_key = keys.source_key
    join companies on companies.slug = settings.company_slug
    union all
    select keys.source, keys.source_key, companies.company_id, 2, 'stripe_metadata'
    from keys
    join {{ ref('stg_stripe__accounts') }} as accounts on accounts.stripe_account_id = keys.source_key
    join companies on companies.slug = accounts.ez360_company_slug
    where keys.source = 'stripe'
    union all
    select keys.source, keys.source_key, companies.company_id, 2, 'erp_company_name'
    from keys
    join companies on companies.name = keys.source_key
    where keys.source = 'erpnext'
    union all
    select keys.source, keys.source_key, companies.company_id, 3, 'ops_stripe_account'
    from keys
    join companies on companies.stripe_account_id = keys.source_key
    where keys.source = 'stripe'
),

ranked as (
    select
        candidates.*,
        row_number() over (partition by source, source_key order by priority, company_id) as preference
    from candidates
)

select
    keys.source,
    keys.source_key,
    keys.source || ':' || keys.source_key as source_company_key,
    ranked.company_id,
    companies.slug as company_slug,
    ranked.rule
from keys
left join ranked
    on ranked.source = keys.source and ranked.source_key = keys.source_key and ranked.preference = 1
left join companies
    on companies.company_id = ranked.company_id
