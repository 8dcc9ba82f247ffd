-- Pair ops_payment~stripe_charge: every ops payment taken through Stripe against the Stripe charges.
-- A charge belongs to a payment by the charge id ops recorded, its payment intent, or the charge's
-- metadata.ez360_payment_ref. Failed charges do not count as payments (a retry after a decline is normal);
-- a payment whose only charges failed is `failed`. Two successful charges for one payment: `duplicate` on
-- the payment and on every extra charge. A successful charge no payment claims: `missing_in_ops`.
with payments as (
    select payment_id, company_id, coalesce(reference, cast(payment_id as {{ dbt.type_string() }})) as payment_key,
           reference, stripe_charge_id, stripe_payment_intent_id, currency, amount_minor, received_on
    from {{ ref('stg_ops__payments') }}
    where method = 'stripe' or stripe_charge_id is not null
),

charges as (
    select charges.*, map.company_id, map.source_company_key
    from {{ ref('stg_stripe__charges') }} as charges
    left join {{ ref('int_source_company_map') }} as map
        on map.source = 'stripe' and map.source_key = charges.account_id
),

links as (
    select
        payments.payment_id,
        charges.charge_id,
        charges.status as charge_status,
        case
            when charges.charge_id = payments.stripe_charge_id then 1
            when charges.payment_intent_id = payments.stripe_payment_intent_id then 2
            else 3
        end as link_rank
    from payments
    join charges
        on charges.charge_id = payments.stripe_charge_id
        or (payments.stripe_payment_intent_id is not null
            and charges.payment_intent_id = payments.stripe_payment_intent_id)
        or (charges.ez360_payment_ref = payments.reference and charges.company_id = payments.company_id)
),

ranked as (
    select
        links.*,
        case when charge_status in ('succeeded', 'pending') then 1 else 0 end as is_live,
        row_number() over (
            partition by payment_id
            order by case when charge_status in ('succeeded', 'pending') then 0 else 1 end, link_rank, charge_id
        ) as charge_order
    from links
),

per_payment as (
    select
        payment_id,
        sum(is_live) as live_charges,
        count(*) as linked_charges,
        {{ dbt.listagg("charge_id", "' '", "order by charge_id") }} as linked_charge_ids
    from ranked
    group by payment_id
),

payment_items as (
    select
        payments.payment_id,
        payments.company_id,
        charges.source_company_key,
        case
            when coalesce(per_payment.live_charges, 0) = 0 and coalesce(per_payment.linked_charges, 0) > 0 then 'failed'
            when coalesce(per_payment.live_charges, 0) = 0 then 'missing_in_stripe'
            when per_payment.live_charges > 1 then 'duplicate'
            when charges.status = 'pending' then 'pending'
            when charges.currency <> payments.currency
                 or not {{ recon_amount_ok('payments.amount_minor', 'charges.amount_minor') }} then 'amount_mismatch'
            when not {{ recon_date_ok('payments.received_on', 'charges.created_on') }} then 'timing_difference'
            else 'matched'
        end as status,
        payments.currency,
        payments.amount_minor,
        charges.amount_minor as other_amount_minor,
        payments.payment_key,
        charges.charge_id,
        per_payment.linked_charge_ids,
        payments.received_on,
        charges.created_on,
        case primary_link.link_rank when 1 then 'reference' when 2 then 'payment_intent' when 3 then 'metadata' end
            as match_method
    from payments
    left join per_payment on per_payment.payment_id = payments.payment_id
    left join ranked as primary_link on primary_link.payment_id = payments.payment_id and primary_link.charge_order = 1
    left join charges on charges.charge_id = primary_link.charge_id
),

extra_charges as (
    -- the second (third, ...) successful charge of one payment
    select ranked.payment_id, ranked.charge_id
    from ranked
    join per_payment on per_payment.payment_id = ranked.payment_id
    where ranked.is_live = 1 and ranked.charge_order > 1 and per_payment.live_charges > 1
),

unclaimed as (
    select charges.*
    from charges
    where charges.status in ('succeeded', 'pending')
      and not exists (select 1 from links where links.charge_id = charges.charge_id)
)

select
    'ops_payment~stripe_charge' as pair,
    'ops_payment~stripe_charge:ops:' || payment_key as item_key,
    company_id,
    source_company_key,
    status,
    currency,
    amount_minor,
    other_amount_minor,
    amount_minor - coalesce(other_amount_minor, 0) as difference_minor,
    'ops_payment' as left_source,
    payment_key as left_id,
    'stripe_charge' as right_source,
    charge_id as right_id,
    linked_charge_ids as related_ids,
    received_on as event_date,
    created_on as other_date,
    match_method
from payment_items

union all

select
    'ops_payment~stripe_charge',
    'ops_payment~stripe_charge:stripe:' || charges.charge_id,
    payments.company_id,
    charges.source_company_key,
    'duplicate',
    charges.currency,
    charges.amount_minor,
    payments.amount_minor,
    charges.amount_minor - payments.amount_minor,
    'ops_payment',
    payments.payment_key,
    'stripe_charge',
    charges.charge_id,
    payments.stripe_charge_id,
    charges.created_on,
    payments.received_on,
    'metadata'
from extra_charges
join payments on payments.payment_id = extra_charges.payment_id
join charges on charges.charge_id = extra_charges.charge_id

union all

select
    'ops_payment~stripe_charge',
    'ops_payment~stripe_charge:stripe:' || charge_id,
    company_id,
    source_company_key,
    case when status = 'pending' then 'pending' else 'missing_in_ops' end,
    currency,
    amount_minor,
    cast(null as {{ dbt.type_bigint() }}),
    amount_minor,
    'ops_payment',
    cast(null as {{ dbt.type_string() }}),
    'stripe_charge',
    charge_id,
    ez360_payment_ref,
    created_on,
    cast(null as date),
    cast(null as {{ dbt.type_string() }})
from unclaimed
