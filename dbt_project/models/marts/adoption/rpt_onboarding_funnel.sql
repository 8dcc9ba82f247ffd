-- Onboarding funnel per company: one row per company and step (in funnel order), the first day the step was
-- reached (null when not yet), days since sign-up, and whether every earlier step was reached too.
-- Steps and their evidence: int_adoption__onboarding_evidence.
{%- set steps = ['signed_up', 'add_client', 'add_project', 'log_time', 'create_invoice', 'send_invoice',
                 'connect_stripe', 'invite_teammate', 'enable_2fa'] %}
with evidence as (
    select * from {{ ref('int_adoption__onboarding_evidence') }}
),

steps as (
    {%- for step in steps %}
    select {{ loop.index }} as step_order, '{{ step }}' as step_key{{ " union all" if not loop.last }}
    {%- endfor %}
),

companies as (
    select company_id, reached_on as signed_up_on
    from evidence
    where step_key = 'signed_up'
),

reached as (
    select
        companies.company_id,
        steps.step_order,
        steps.step_key,
        companies.signed_up_on,
        evidence.reached_on
    from companies
    cross join steps
    left join evidence
        on evidence.company_id = companies.company_id
        and evidence.step_key = steps.step_key
)

select
    company_id,
    step_order,
    step_key,
    reached_on,
    case when reached_on is null then null
         else cast({{ dbt.datediff('signed_up_on', 'reached_on', 'day') }} as {{ dbt.type_bigint() }})
    end as days_from_signup,
    reached_on is not null as is_reached,
    min(case when reached_on is null then 0 else 1 end) over (
        partition by company_id order by step_order rows between unbounded preceding and current row) = 1
        as is_reached_in_order
from reached
