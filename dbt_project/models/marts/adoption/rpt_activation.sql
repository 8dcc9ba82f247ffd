-- Activation per company: a company is activated when it sends its first invoice. days_to_activation = days
-- from sign-up to the first sent invoice (both as defined in int_adoption__onboarding_evidence); null while
-- not activated. first_login_on = the first `login` usage event.
with evidence as (
    select * from {{ ref('int_adoption__onboarding_evidence') }}
),

logins as (
    select company_id, min(occurred_on) as first_login_on
    from {{ ref('stg_ops__usage_events') }}
    where event_name = 'login'
    group by 1
),

signed_up as (
    select company_id, reached_on as signed_up_on from evidence where step_key = 'signed_up'
),

sent as (
    select company_id, reached_on as first_invoice_sent_on from evidence where step_key = 'send_invoice'
)

select
    signed_up.company_id,
    signed_up.signed_up_on,
    logins.first_login_on,
    sent.first_invoice_sent_on,
    sent.first_invoice_sent_on is not null as is_activated,
    case when sent.first_invoice_sent_on is null then null
         else cast({{ dbt.datediff('signed_up.signed_up_on', 'sent.first_invoice_sent_on', 'day') }}
                   as {{ dbt.type_bigint() }})
    end as days_to_activation
from signed_up
left join logins
    on signed_up.company_id = logins.company_id
left join sent
    on signed_up.company_id = sent.company_id
