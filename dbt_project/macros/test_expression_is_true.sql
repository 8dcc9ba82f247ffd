{#- Fails for every row where the boolean SQL `expression` is not true (false or null).
    Attach it to a model or to a column (column_name is then accepted and ignored). -#}
{% test expression_is_true(model, expression, column_name=none) %}
    select *
    from {{ model }}
    where not coalesce({{ expression }}, false)
{% endtest %}
