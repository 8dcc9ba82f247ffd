{#- Reconciliation helpers: the tolerances are dbt vars (dbt_project.yml, documented in docs/warehouse.md). -#}

{#- Amounts agree: same currency and at most `reconciliation_amount_tolerance_minor` minor units apart. -#}
{% macro recon_amount_ok(left_amount, right_amount) -%}
    (abs(({{ left_amount }}) - ({{ right_amount }})) <= {{ var('reconciliation_amount_tolerance_minor') }})
{%- endmacro %}

{#- Dates agree: at most `reconciliation_date_tolerance_days` apart and in the same calendar month. -#}
{% macro recon_date_ok(left_date, right_date) -%}
    (abs({{ dbt.datediff(left_date, right_date, 'day') }}) <= {{ var('reconciliation_date_tolerance_days') }}
     and {{ dbt.date_trunc('month', left_date) }} = {{ dbt.date_trunc('month', right_date) }})
{%- endmacro %}

{#- Within the candidate window (days, either direction). -#}
{% macro recon_in_window(left_date, right_date) -%}
    (abs({{ dbt.datediff(left_date, right_date, 'day') }}) <= {{ var('reconciliation_candidate_window_days') }})
{%- endmacro %}

{#- The day the reconciliation is judged on. -#}
{% macro recon_as_of() -%}
    {%- if var('reconciliation_as_of') -%}cast('{{ var("reconciliation_as_of") }}' as date)
    {%- else -%}current_date{%- endif -%}
{%- endmacro %}

{#- The columns every int_recon__* model returns, in order (fct_reconciliation_items unions them). -#}
{% macro recon_item_columns() -%}
    pair, item_key, company_id, source_company_key, status, currency, amount_minor, other_amount_minor,
    difference_minor, left_source, left_id, right_source, right_id, related_ids, event_date, other_date,
    match_method
{%- endmacro %}
