-- Accounting months closed to postings.
-- Staging: renamed, typed; money in integer minor units; dlt columns dropped.
with source as (
    {{ landed_source('ops', 'closed_periods', {
        'id': 'bigint',
        'company_id': 'bigint',
        'period': 'text',
        'closed_at': 'keep'
    }) }}
)

select
    id as closed_period_id,
    company_id,
    period,
    closed_at
from source
