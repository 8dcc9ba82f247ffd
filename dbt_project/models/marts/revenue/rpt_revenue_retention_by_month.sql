-- Revenue and logo retention per company (Stripe account), month and currency, from the MRR bridge:
--   nrr_ratio        = (opening + expansion + contraction + churned) / opening   (net revenue retention)
--   grr_ratio        = (opening + contraction + churned) / opening               (gross revenue retention)
--   logo_churn_ratio = customers churned in the month / customers with MRR at the opening
-- Monthly rates, decimal(18,4), null when there was no opening MRR. New and reactivated MRR never count.
with bridge as (
    select * from {{ ref('rpt_mrr_by_month') }}
)

select
    source_company_key,
    company_id,
    company_slug,
    mrr_month,
    currency,
    opening_mrr_minor,
    cast(opening_mrr_minor + expansion_mrr_minor + contraction_mrr_minor + churned_mrr_minor
         as {{ dbt.type_bigint() }}) as retained_net_mrr_minor,
    cast(opening_mrr_minor + contraction_mrr_minor + churned_mrr_minor
         as {{ dbt.type_bigint() }}) as retained_gross_mrr_minor,
    customers_start,
    customers_churned,
    {{ ratio('opening_mrr_minor + expansion_mrr_minor + contraction_mrr_minor + churned_mrr_minor',
             'opening_mrr_minor') }} as nrr_ratio,
    {{ ratio('opening_mrr_minor + contraction_mrr_minor + churned_mrr_minor', 'opening_mrr_minor') }} as grr_ratio,
    {{ ratio('customers_churned', 'customers_start') }} as logo_churn_ratio
from bridge
