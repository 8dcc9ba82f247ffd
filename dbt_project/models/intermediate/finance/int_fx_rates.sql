-- Dated exchange rates to each base currency: 1 `currency` = rate `base_currency`, valid from rate_date until
-- the next rate of the pair (seed exchange_rates, or ERPNext Currency Exchange records when landed; the ERP
-- wins on the same date). The identity rate 1 covers a currency in its own base. Exact decimals.
with rates as (
    select cast(rate_date as date) as rate_date, currency, base_currency, cast(rate as numeric(38, 18)) as rate,
           2 as preference
    from {{ ref('exchange_rates') }}
    union all
    select rate_date, from_currency, to_currency, exchange_rate, 1
    from {{ ref('stg_erpnext__currency_exchanges') }}
    where not is_cancelled
),

ranked as (
    select rates.*, row_number() over (partition by currency, base_currency, rate_date order by preference) as pick
    from rates
),

dated as (
    select
        rate_date as valid_from,
        coalesce(lead(rate_date) over (partition by currency, base_currency order by rate_date),
                 cast('9999-12-31' as date)) as valid_to,
        currency,
        base_currency,
        rate
    from ranked
    where pick = 1
),

currencies as (
    select distinct base_currency as currency from {{ ref('dim_companies') }}
)

select valid_from, valid_to, currency, base_currency, rate from dated
union all
select cast('1900-01-01' as date), cast('9999-12-31' as date), currency, currency, cast(1 as numeric(38, 18))
from currencies
