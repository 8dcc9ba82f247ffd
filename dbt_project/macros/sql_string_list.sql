{#- Render a list of strings as a parenthesised SQL literal list: ['a', 'b'] -> ('a', 'b'). -#}
{% macro sql_string_list(values) -%}
    ({%- for value in values -%}
        '{{ value | replace("'", "''") }}'{{ ", " if not loop.last }}
    {%- endfor -%})
{%- endmacro %}
