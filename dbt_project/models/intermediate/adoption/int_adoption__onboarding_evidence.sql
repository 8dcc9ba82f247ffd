-- One row per company and onboarding step it reached, with the first day (UTC) the step was seen. A step is
-- reached by its usage event or by the record that proves it, whichever came first (the rules of
-- operational_api/services/onboarding.py, plus sending a first invoice and logging time):
--   signed_up        the company row, its first membership or its first usage event
--   add_client       a client row / client_created          add_project   a project row / project_created
--   log_time         a time entry row / time_logged          create_invoice an invoice row / invoice_created
--   send_invoice     the issue date of an issued invoice / invoice_sent
--   connect_stripe   stripe_connected                        invite_teammate a second membership / teammate_invited
--   enable_2fa       two_factor_enabled
with events as (
    select company_id, event_name, min(occurred_on) as first_on
    from {{ ref('stg_ops__usage_events') }}
    group by 1, 2
),

second_members as (
    select company_id, created_at
    from (
        select
            company_id,
            created_at,
            row_number() over (partition by company_id order by created_at, membership_id) as position
        from {{ ref('stg_ops__memberships') }}
    ) as ranked
    where position = 2
),

evidence as (
    select company_id, 'signed_up' as step_key, cast(created_at as date) as seen_on
    from {{ ref('stg_ops__companies') }}
    union all
    select company_id, 'signed_up', cast(min(created_at) as date) from {{ ref('stg_ops__memberships') }} group by 1
    union all
    select company_id, 'signed_up', min(first_on) from events group by 1
    union all
    select company_id, 'add_client', cast(min(created_at) as date) from {{ ref('stg_ops__clients') }} group by 1
    union all
    select company_id, 'add_project', cast(min(created_at) as date) from {{ ref('stg_ops__projects') }} group by 1
    union all
    select company_id, 'log_time', cast(min(created_at) as date) from {{ ref('stg_ops__time_entries') }} group by 1
    union all
    select company_id, 'create_invoice', cast(min(created_at) as date) from {{ ref('stg_ops__invoices') }} group by 1
    union all
    select company_id, 'send_invoice', min(issue_date)
    from {{ ref('stg_ops__invoices') }}
    where status in ('sent', 'partially_paid', 'paid', 'void') and issue_date is not null
    group by 1
    union all
    select company_id, 'invite_teammate', cast(created_at as date) from second_members
    union all
    select
        company_id,
        case event_name
            when 'client_created' then 'add_client'
            when 'project_created' then 'add_project'
            when 'time_logged' then 'log_time'
            when 'invoice_created' then 'create_invoice'
            when 'invoice_sent' then 'send_invoice'
            when 'stripe_connected' then 'connect_stripe'
            when 'teammate_invited' then 'invite_teammate'
            when 'two_factor_enabled' then 'enable_2fa'
        end,
        first_on
    from events
    where event_name in ('client_created', 'project_created', 'time_logged', 'invoice_created', 'invoice_sent',
                         'stripe_connected', 'teammate_invited', 'two_factor_enabled')
)

select company_id, step_key, min(seen_on) as reached_on
from evidence
where seen_on is not null
group by 1, 2
