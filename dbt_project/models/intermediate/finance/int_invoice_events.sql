-- Every dated event that changes what a client owes on an issued ops invoice, in minor units of the invoice
-- currency: the invoice itself (+ total), its credit notes (- total, on their issue date), payments allocated
-- to it (- amount, on the payment's received_on) and refunds taken back from it (negative allocations:
-- + amount, on the refund date). Summing up to a date gives the invoice's open amount on that date.
with invoices as (
    select * from {{ ref('stg_ops__invoices') }}
    where status <> 'draft' and deleted_at is null
),

allocations as (
    select
        allocations.invoice_id,
        allocations.amount_minor,
        coalesce(refunds.refunded_on, payments.received_on) as event_date,
        case when allocations.refund_id is not null then 'refund' else 'payment' end as event_type,
        allocations.payment_allocation_id
    from {{ ref('stg_ops__payment_allocations') }} as allocations
    join {{ ref('stg_ops__payments') }} as payments on payments.payment_id = allocations.payment_id
    left join {{ ref('stg_ops__refunds') }} as refunds on refunds.refund_id = allocations.refund_id
)

select invoices.invoice_id, invoices.company_id, invoices.currency, 'invoice' as event_type,
       invoices.issue_date as event_date, invoices.total_minor as amount_minor,
       'invoice:' || cast(invoices.invoice_id as {{ dbt.type_string() }}) as event_id
from invoices
union all
select invoices.invoice_id, invoices.company_id, invoices.currency, 'credit_note', notes.issue_date,
       -notes.total_minor, 'credit_note:' || cast(notes.credit_note_id as {{ dbt.type_string() }})
from {{ ref('stg_ops__credit_notes') }} as notes
join invoices on invoices.invoice_id = notes.invoice_id
union all
select invoices.invoice_id, invoices.company_id, invoices.currency, allocations.event_type, allocations.event_date,
       -allocations.amount_minor, 'allocation:' || cast(allocations.payment_allocation_id as {{ dbt.type_string() }})
from allocations
join invoices on invoices.invoice_id = allocations.invoice_id
