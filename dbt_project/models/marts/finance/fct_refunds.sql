-- One row per ops refund (money given back on a payment), minor units of its currency.
select
    refund_id,
    payment_id,
    company_id,
    currency,
    {{ currency_exponent('currency') }} as currency_exponent,
    amount_minor,
    refunded_on,
    cast({{ dbt.date_trunc('month', 'refunded_on') }} as date) as refunded_month,
    reason,
    stripe_refund_id
from {{ ref('stg_ops__refunds') }}
