{#-
    The declared columns of a raw table, typed, as a subquery body: `select cast(col as type) as col, ...
    from <source>`. A declared column the loader has not created yet (dlt adds a column with its first
    non-null value) comes out as a typed null, and a table that has not landed at all (no credit notes so
    far, no export files dropped) gives the same columns and no rows. So staging views always have their
    documented shape, whatever subset of the raw layer exists.

    columns: {column: kind}, kind one of text, bigint, bool, decimal (38,9), rate (38,18), date, keep
    (present: passed through uncast, e.g. timestamps whose zone handling the engine owns; absent: null
    timestamp), json (as text).
-#}
{% macro landed_source(source_name, table_name, columns) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- set present = [] -%}
    {%- if execute -%}
        {%- set existing = adapter.get_relation(database=relation.database, schema=relation.schema,
                                                identifier=relation.identifier) -%}
        {%- if existing is not none -%}
            {%- for column in adapter.get_columns_in_relation(existing) -%}
                {%- do present.append(column.name | lower) -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endif %}
    select
    {%- for name, kind in columns.items() %}
        {% if name in present -%}
            {%- if kind == 'keep' -%}{{ adapter.quote(name) }}
            {%- elif kind == 'json' -%}cast({{ adapter.quote(name) }} as {{ dbt.type_string() }})
            {%- else -%}cast({{ adapter.quote(name) }} as {{ raw_type(kind) }}){%- endif -%}
        {%- else -%}
            cast(null as {{ raw_type(kind) }})
        {%- endif %} as {{ adapter.quote(name) }}{{ "," if not loop.last }}
    {%- endfor %}
    {% if present -%}
    from {{ relation }}
    {%- else -%}
    from (select 1 as not_landed) as not_landed where 1 = 0
    {%- endif %}
{%- endmacro %}

{% macro raw_type(kind) -%}
    {%- if kind == 'text' or kind == 'json' -%}{{ dbt.type_string() }}
    {%- elif kind == 'bigint' -%}{{ dbt.type_bigint() }}
    {%- elif kind == 'bool' -%}{{ dbt.type_boolean() }}
    {%- elif kind == 'decimal' -%}numeric(38, 9)
    {%- elif kind == 'rate' -%}numeric(38, 18)
    {%- elif kind == 'date' -%}date
    {%- elif kind == 'keep' or kind == 'timestamp' -%}{{ dbt.type_timestamp() }}
    {%- else -%}{{ exceptions.raise_compiler_error("landed_source: unknown column kind " ~ kind) }}
    {%- endif -%}
{%- endmacro %}

{#- Stripe epoch seconds (bigint) -> UTC date, by integer day arithmetic (no session time zone involved). -#}
{% macro epoch_to_date(column) -%}
    (cast('1970-01-01' as date) + cast(floor({{ column }} / 86400.0) as integer))
{%- endmacro %}

{#- Stripe epoch seconds (bigint) -> timestamp with time zone (an instant). -#}
{% macro epoch_to_timestamp(column) -%}
    to_timestamp({{ column }})
{%- endmacro %}

{#- dlt load id ('1704067200.000001', epoch seconds as text) -> timestamp: when the row's load ran. -#}
{% macro dlt_loaded_at(column='_dlt_load_id') -%}
    to_timestamp(cast({{ column }} as numeric(20, 6)))
{%- endmacro %}
