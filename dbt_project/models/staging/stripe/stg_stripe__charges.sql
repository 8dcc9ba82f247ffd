-- Stripe charges.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('stripe', 'charges', {
        'id': 'text',
        'account_id': 'text',
        'created': 'bigint',
        'livemode': 'bool',
        'amount': 'bigint',
        'amount_captured': 'bigint',
        'amount_refunded': 'bigint',
        'currency': 'text',
        'customer': 'text',
        'payment_intent': 'text',
        'balance_transaction': 'text',
        'captured': 'bool',
        'paid': 'bool',
        'refunded': 'bool',
        'disputed': 'bool',
        'status': 'text',
        'failure_code': 'text',
        'failure_message': 'text',
        'failure_balance_transaction': 'text',
        'description': 'text',
        'metadata__invoice_number': 'text',
        'metadata__ez360_payment_ref': 'text'
    }) }}
)

select
    id as charge_id,
    account_id,
    amount as amount_minor,
    amount_captured as amount_captured_minor,
    amount_refunded as amount_refunded_minor,
    upper(currency) as currency,
    customer as customer_id,
    payment_intent as payment_intent_id,
    balance_transaction as balance_transaction_id,
    captured as is_captured,
    paid as is_paid,
    refunded as is_refunded,
    disputed as is_disputed,
    status,
    failure_code,
    failure_message,
    description,
    metadata__invoice_number as invoice_number,
    metadata__ez360_payment_ref as ez360_payment_ref,
    {{ epoch_to_timestamp('created') }} as created_at,
    {{ epoch_to_date('created') }} as created_on
from source
