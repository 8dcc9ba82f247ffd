-- Data health: rows per raw table and dlt load, for every table the sources declare that has landed
-- (ops, stripe, erpnext, files), with when the load ran. Child tables (no _dlt_load_id) count under a null
-- load. Tables not landed yet have no rows here; dbt source freshness reports their staleness.
{% set selects = [] %}
{% if execute %}
    {% for node in graph.sources.values() | sort(attribute='unique_id') %}
        {% if node.source_name in ['ops', 'stripe', 'erpnext', 'files'] %}
            {% set relation = adapter.get_relation(database=node.database, schema=node.schema, identifier=node.identifier) %}
            {% if relation is not none %}
                {% set columns = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list %}
                {% if '_dlt_load_id' in columns %}
                    {% do selects.append("select '" ~ node.source_name ~ "' as source, '" ~ node.name ~ "' as table_name, "
                        ~ "cast(_dlt_load_id as " ~ dbt.type_string() ~ ") as load_id, count(*) as row_count from " ~ relation
                        ~ " group by _dlt_load_id") %}
                {% else %}
                    {% do selects.append("select '" ~ node.source_name ~ "' as source, '" ~ node.name ~ "' as table_name, "
                        ~ "cast(null as " ~ dbt.type_string() ~ ") as load_id, count(*) as row_count from " ~ relation) %}
                {% endif %}
            {% endif %}
        {% endif %}
    {% endfor %}
{% endif %}

with counts as (
    {% for select in selects %}
    {{ select }}
    union all
    {% endfor %}
    select cast(null as {{ dbt.type_string() }}) as source, cast(null as {{ dbt.type_string() }}) as table_name,
           cast(null as {{ dbt.type_string() }}) as load_id, cast(0 as {{ dbt.type_bigint() }}) as row_count
    where 1 = 0
)

select
    source,
    table_name,
    load_id,
    case when load_id is not null then {{ dlt_loaded_at('load_id') }} end as loaded_at,
    cast(row_count as {{ dbt.type_bigint() }}) as row_count
from counts
