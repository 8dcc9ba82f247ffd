-- Accounts receivable aging as of each month end (and the reconciliation as-of day): what every issued ops
-- invoice still owed on that day (int_invoice_events up to the day), bucketed by days past its due date:
-- current (not yet due), 1-30, 31-60, 61-90, 90+. One row per company x as-of date x currency x bucket; the
-- buckets of one company, date and currency sum to its open AR. Overpaid invoices (owed < 0) are credits,
-- not receivables, and are left out. An invoice without a due date is due on its issue date.
-- `open_base_minor`: the same in the company's base currency at the rate valid on the as-of date (null when no
-- rate is known), so the dashboards can show one total per bucket with the original currencies on demand.
with recursive month_ends as (
    select cast({{ dbt.last_day("(select min(event_date) from " ~ ref('int_invoice_events') ~ ")", 'month') }} as date)
        as as_of_date
    union all
    select cast({{ dbt.last_day(dbt.dateadd('day', 1, 'as_of_date'), 'month') }} as date)
    from month_ends
    where as_of_date < (select max(event_date) from {{ ref('int_invoice_events') }})
),

as_of_dates as (
    select as_of_date from month_ends
    union
    select {{ recon_as_of() }}
),

invoices as (
    select invoice_id, issue_date, due_date from {{ ref('stg_ops__invoices') }}
),

owed as (
    select
        as_of_dates.as_of_date,
        events.company_id,
        events.currency,
        events.invoice_id,
        sum(events.amount_minor) as open_minor
    from as_of_dates
    join {{ ref('int_invoice_events') }} as events on events.event_date <= as_of_dates.as_of_date
    group by as_of_dates.as_of_date, events.company_id, events.currency, events.invoice_id
),

bucketed as (
    select
        owed.*,
        {{ dbt.datediff('coalesce(invoices.due_date, invoices.issue_date)', 'owed.as_of_date', 'day') }} as days_past_due
    from owed
    join invoices on invoices.invoice_id = owed.invoice_id
    where owed.open_minor > 0
),

aged as (
    select
        company_id,
        as_of_date,
        currency,
        {{ currency_exponent('currency') }} as currency_exponent,
        case
            when days_past_due <= 0 then 'current'
            when days_past_due <= 30 then '1-30'
            when days_past_due <= 60 then '31-60'
            when days_past_due <= 90 then '61-90'
            else '90+'
        end as aging_bucket,
        case
            when days_past_due <= 0 then 1 when days_past_due <= 30 then 2 when days_past_due <= 60 then 3
            when days_past_due <= 90 then 4 else 5
        end as bucket_order,
        cast(sum(open_minor) as {{ dbt.type_bigint() }}) as open_minor,
        count(*) as invoice_count
    from bucketed
    group by 1, 2, 3, 4, 5, 6
)

select
    aged.*,
    companies.base_currency,
    {{ analytics_to_base('aged.open_minor', 'aged.currency', 'companies.base_currency', 'rates.rate') }}
        as open_base_minor
from aged
left join {{ ref('dim_companies') }} as companies
    on aged.company_id = companies.company_id
left join {{ ref('int_fx_rates') }} as rates
    on {{ rate_valid_on('rates', 'aged.currency', 'companies.base_currency', 'aged.as_of_date') }}
