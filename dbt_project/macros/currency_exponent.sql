{#-
    ISO 4217 minor-unit exponent of a currency-code expression (USD 2, JPY 0, KWD 3, ...), from the
    `currency_exponents` project var (kept equal to ez360.money.CURRENCY_EXPONENTS). An unsupported
    code yields null, which the not_null tests on the marts turn into a failure.
-#}
{% macro currency_exponent(currency_code) -%}
    case {{ currency_code }}
    {%- for code, exponent in var('currency_exponents') | dictsort %}
        when '{{ code }}' then {{ exponent }}
    {%- endfor %}
    end
{%- endmacro %}
