-- The resolution in force per (company, pair, item_key): the latest row finance recorded in the ops app
-- (raw_ops.reconciliation_resolutions, append-only); when that latest row is `reopened`, none is.
with ranked as (
    select
        resolution_id, company_id, pair, item_key, action, linked_key, note, user_id, created_at,
        row_number() over (partition by company_id, pair, item_key order by created_at desc, resolution_id desc)
            as recency
    from {{ ref('stg_ops__reconciliation_resolutions') }}
)

select resolution_id, company_id, pair, item_key, action, linked_key, note, user_id, created_at
from ranked
where recency = 1 and action <> 'reopened'
