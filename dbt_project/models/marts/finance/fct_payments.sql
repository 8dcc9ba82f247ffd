-- One row per ops payment received: amount, what of it is allocated to invoices, refunded, and kept as
-- client credit, in minor units of the payment currency.
with allocations as (
    select payment_id,
           sum(case when amount_minor > 0 then amount_minor else 0 end) as allocated_minor
    from {{ ref('stg_ops__payment_allocations') }}
    group by payment_id
),

refunds as (
    select payment_id, sum(amount_minor) as refunded_minor
    from {{ ref('stg_ops__refunds') }}
    group by payment_id
)

select
    payments.payment_id,
    payments.company_id,
    payments.client_id,
    payments.method,
    payments.currency,
    {{ currency_exponent('payments.currency') }} as currency_exponent,
    payments.amount_minor,
    cast(coalesce(allocations.allocated_minor, 0) as {{ dbt.type_bigint() }}) as allocated_minor,
    cast(coalesce(refunds.refunded_minor, 0) as {{ dbt.type_bigint() }}) as refunded_minor,
    cast(payments.amount_minor - coalesce(refunds.refunded_minor, 0) as {{ dbt.type_bigint() }}) as net_received_minor,
    payments.received_on,
    cast({{ dbt.date_trunc('month', 'payments.received_on') }} as date) as received_month,
    payments.reference,
    payments.stripe_charge_id
from {{ ref('stg_ops__payments') }} as payments
left join allocations on allocations.payment_id = payments.payment_id
left join refunds on refunds.payment_id = payments.payment_id
