-- MRR bridge per company (Stripe account), month and currency: opening + new + expansion + contraction
-- + churned + reactivation = closing (contraction and churned <= 0). ARR = 12 x closing MRR.
-- Integer minor units of `currency`; the `_base_minor` columns: the same in the company's base currency at the
-- month's closing rate (int_fx_rates, as the executive KPIs convert MRR), null when no rate is known.
with customer_months as (
    select * from {{ ref('fct_mrr_customer_month') }}
),

companies as (
    select * from {{ ref('dim_companies') }}
),

bridge as (
    select
        customer_months.source_company_key,
        customer_months.company_id,
        companies.company_slug,
        customer_months.mrr_month,
        customer_months.currency,
        {{ currency_exponent('customer_months.currency') }} as currency_exponent,
        cast(sum(customer_months.opening_mrr_minor) as {{ dbt.type_bigint() }}) as opening_mrr_minor,
        cast(sum(customer_months.new_mrr_minor) as {{ dbt.type_bigint() }}) as new_mrr_minor,
        cast(sum(customer_months.expansion_mrr_minor) as {{ dbt.type_bigint() }}) as expansion_mrr_minor,
        cast(sum(customer_months.contraction_mrr_minor) as {{ dbt.type_bigint() }}) as contraction_mrr_minor,
        cast(sum(customer_months.churned_mrr_minor) as {{ dbt.type_bigint() }}) as churned_mrr_minor,
        cast(sum(customer_months.reactivation_mrr_minor) as {{ dbt.type_bigint() }}) as reactivation_mrr_minor,
        cast(sum(customer_months.mrr_minor) as {{ dbt.type_bigint() }}) as closing_mrr_minor,
        cast(12 * sum(customer_months.mrr_minor) as {{ dbt.type_bigint() }}) as arr_minor,
        cast(sum(case when customer_months.mrr_minor > 0 then 1 else 0 end) as {{ dbt.type_bigint() }})
            as active_customers,
        cast(sum(case when customer_months.opening_mrr_minor > 0 then 1 else 0 end) as {{ dbt.type_bigint() }})
            as customers_start,
        cast(sum(case when customer_months.movement_type = 'churn' then 1 else 0 end) as {{ dbt.type_bigint() }})
            as customers_churned
    from customer_months
    left join companies
        on customer_months.company_id = companies.company_id
    group by 1, 2, 3, 4, 5
)

select
    bridge.*,
    companies.base_currency,
    {%- for column in ['opening_mrr_minor', 'new_mrr_minor', 'expansion_mrr_minor', 'contraction_mrr_minor',
                       'churned_mrr_minor', 'reactivation_mrr_minor', 'closing_mrr_minor', 'arr_minor'] %}
    {{ analytics_to_base('bridge.' ~ column, 'bridge.currency', 'companies.base_currency', 'rates.rate') }}
        as {{ column | replace('_minor', '_base_minor') }}{{ "," if not loop.last }}
    {%- endfor %}
from bridge
left join companies
    on bridge.company_id = companies.company_id
left join {{ ref('int_fx_rates') }} as rates
    on {{ rate_valid_on('rates', 'bridge.currency', 'companies.base_currency',
                        analytics_month_close('bridge.mrr_month')) }}
