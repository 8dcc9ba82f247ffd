{#-
    Money rules of the warehouse (docs/warehouse.md):

    - Integer minor units everywhere: amount_minor = major amount * 10^exponent, exponent from ISO 4217
      (`currency_exponents` var: JPY 0, USD 2, KWD 3).
    - ERPNext and export files send exact decimals in major units. to_minor() converts them with ONE rule:
      round half away from zero at the currency's exponent (12.345 USD -> 1235, -12.345 -> -1235). Amounts
      that already have no more decimals than the exponent convert exactly.
    - The factor 10^exponent is an exact integer literal per currency, never power() (a float on PostgreSQL).
-#}
{% macro currency_factor(currency_code) -%}
    case upper({{ currency_code }})
    {%- for code, exponent in var('currency_exponents') | dictsort %}
        when '{{ code }}' then {{ 10 ** exponent }}
    {%- endfor %}
    end
{%- endmacro %}

{% macro to_minor(amount, currency_code) -%}
    cast(
        sign({{ amount }}) * floor(abs({{ amount }}) * {{ currency_factor(currency_code) }} + 0.5)
        as {{ dbt.type_bigint() }})
{%- endmacro %}

{#-
    Convert integer minor units of `from_currency` into integer minor units of another currency at `rate`
    (units of target currency per 1 unit of source currency, exact decimal): minor / 10^e_from * rate *
    10^e_to, rounded half away from zero once, at the end.
-#}
{% macro convert_minor(amount_minor, from_currency, to_currency, rate) -%}
    cast(
        sign({{ amount_minor }} * {{ rate }})
        * floor(abs(cast({{ amount_minor }} as numeric(38, 9)) * {{ rate }} * {{ currency_factor(to_currency) }}
                    / {{ currency_factor(from_currency) }}) + 0.5)
        as {{ dbt.type_bigint() }})
{%- endmacro %}
