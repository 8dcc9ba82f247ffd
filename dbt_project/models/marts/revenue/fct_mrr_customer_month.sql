-- One row per Stripe customer, currency and month in which the customer had MRR at the opening or the close
-- of the month, with the month's movement. Opening = the previous month's closing MRR. Movement rules:
--   new           opening 0, closing > 0, never had MRR before
--   reactivation  opening 0, closing > 0, had MRR in an earlier month
--   expansion     0 < opening < closing        contraction  0 < closing < opening
--   churn         opening > 0, closing 0       retained     opening = closing > 0
-- Amounts: integer minor units of `currency`; contraction and churn are <= 0, so
-- opening + new + expansion + contraction + churned + reactivation = closing on every row.
with customer_months as (
    select
        *,
        coalesce(lag(mrr_minor) over (
            partition by source_company_key, customer_id, currency order by mrr_month), 0) as opening_mrr_minor,
        coalesce(max(case when mrr_minor > 0 then 1 else 0 end) over (
            partition by source_company_key, customer_id, currency order by mrr_month
            rows between unbounded preceding and 1 preceding), 0) as had_mrr_before
    from {{ ref('int_revenue__customer_month_mrr') }}
),

classified as (
    select
        *,
        case
            when opening_mrr_minor = 0 and mrr_minor > 0 and had_mrr_before = 1 then 'reactivation'
            when opening_mrr_minor = 0 and mrr_minor > 0 then 'new'
            when opening_mrr_minor > 0 and mrr_minor = 0 then 'churn'
            when mrr_minor > opening_mrr_minor then 'expansion'
            when mrr_minor < opening_mrr_minor then 'contraction'
            else 'retained'
        end as movement_type
    from customer_months
    where opening_mrr_minor > 0 or mrr_minor > 0
)

select
    source_company_key,
    company_id,
    account_id,
    customer_id,
    currency,
    mrr_month,
    measured_on,
    movement_type,
    cast(opening_mrr_minor as {{ dbt.type_bigint() }}) as opening_mrr_minor,
    cast(case when movement_type = 'new' then mrr_minor else 0 end as {{ dbt.type_bigint() }}) as new_mrr_minor,
    cast(case when movement_type = 'expansion' then mrr_minor - opening_mrr_minor else 0 end
         as {{ dbt.type_bigint() }}) as expansion_mrr_minor,
    cast(case when movement_type = 'contraction' then mrr_minor - opening_mrr_minor else 0 end
         as {{ dbt.type_bigint() }}) as contraction_mrr_minor,
    cast(case when movement_type = 'churn' then -opening_mrr_minor else 0 end
         as {{ dbt.type_bigint() }}) as churned_mrr_minor,
    cast(case when movement_type = 'reactivation' then mrr_minor else 0 end
         as {{ dbt.type_bigint() }}) as reactivation_mrr_minor,
    cast(mrr_minor as {{ dbt.type_bigint() }}) as mrr_minor
from classified
