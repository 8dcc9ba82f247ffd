-- Data health: records the ingest quarantined instead of landing them, per source, table and reason
-- (raw_<source>._quarantine), with the latest occurrence.
{% set selects = [] %}
{% if execute %}
    {% for schema in ['raw_ops', 'raw_stripe', 'raw_erpnext', 'raw_files'] %}
        {% set relation = adapter.get_relation(database=target.database, schema=schema, identifier='_quarantine') %}
        {% if relation is not none %}
            {% do selects.append("select cast(source as " ~ dbt.type_string() ~ ") as source, cast(table_name as "
                ~ dbt.type_string() ~ ") as table_name, cast(reason as " ~ dbt.type_string() ~ ") as reason, "
                ~ "count(*) as quarantined_count, max(quarantined_at) as last_quarantined_at from " ~ relation
                ~ " group by source, table_name, reason") %}
        {% endif %}
    {% endfor %}
{% endif %}

with counts as (
    {% for select in selects %}
    {{ select }}
    union all
    {% endfor %}
    select cast(null as {{ dbt.type_string() }}) as source, cast(null as {{ dbt.type_string() }}) as table_name,
           cast(null as {{ dbt.type_string() }}) as reason, cast(0 as {{ dbt.type_bigint() }}) as quarantined_count,
           cast(null as {{ dbt.type_timestamp() }}) as last_quarantined_at
    where 1 = 0
)

select
    source,
    table_name,
    reason,
    cast(quarantined_count as {{ dbt.type_bigint() }}) as quarantined_count,
    last_quarantined_at
from counts
