{#-
    An amount in integer minor units of `currency` in the company's base currency, at `rate` (units of base
    per unit of currency, from int_fx_rates): unchanged when the currencies are equal, else converted with
    the warehouse's convert_minor() (one rounding, half away from zero). Null when no rate is known.
-#}
{% macro analytics_to_base(amount_minor, currency, base_currency, rate) -%}
    case when {{ currency }} = {{ base_currency }} then cast({{ amount_minor }} as {{ dbt.type_bigint() }})
         else {{ convert_minor(amount_minor, currency, base_currency, rate) }}
    end
{%- endmacro %}

{#- Join condition picking the int_fx_rates row (alias `rates`) of a currency pair valid on a day. -#}
{% macro rate_valid_on(rates, currency, base_currency, day) -%}
    {{ rates }}.currency = {{ currency }}
    and {{ rates }}.base_currency = {{ base_currency }}
    and {{ rates }}.valid_from <= {{ day }}
    and {{ rates }}.valid_to > {{ day }}
{%- endmacro %}
