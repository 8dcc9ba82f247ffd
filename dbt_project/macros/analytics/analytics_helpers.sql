{#-
    Helpers of the analytics marts (revenue, operations, adoption, executive). Portable on DuckDB and
    PostgreSQL; no floating point anywhere: ratios are computed from integers with exact integer division.
-#}

{#- Settings of the analytics marts, each a dbt var with the documented default below (docs/analytics-marts.md). -#}
{% macro analytics_var(name) -%}
    {%- set defaults = {
        'analytics_as_of_date': none,
        'analytics_calendar_start': '2015-01-01',
        'utilization_hours_per_weekday': 8,
        'utilization_roles': ['owner', 'admin', 'staff'],
        'mrr_excluded_subscription_statuses': ['incomplete', 'incomplete_expired', 'trialing'],
        'adoption_wau_days': 7,
        'adoption_mau_days': 30,
        'adoption_features': ['client_created', 'project_created', 'time_logged', 'invoice_created',
                              'invoice_sent', 'payment_recorded', 'expense_recorded', 'report_viewed',
                              'credit_note_issued', 'refund_recorded', 'journal_entry_posted', 'period_closed'],
    } -%}
    {{- return(var(name, defaults[name])) -}}
{%- endmacro %}

{#- The date the analytics marts run up to: var `analytics_as_of_date` (YYYY-MM-DD) or today (UTC). -#}
{% macro analytics_as_of_date() -%}
    {%- set as_of = analytics_var('analytics_as_of_date') -%}
    {%- if as_of -%}cast('{{ as_of }}' as date){%- else -%}current_date{%- endif -%}
{%- endmacro %}

{#- First day of the month of a date expression, as a date. -#}
{% macro month_of(date_expr) -%}
    cast({{ dbt.date_trunc('month', date_expr) }} as date)
{%- endmacro %}

{#- Monday of the ISO week of a date expression, as a date (date_trunc('week') is ISO on both engines). -#}
{% macro week_of(date_expr) -%}
    cast({{ dbt.date_trunc('week', date_expr) }} as date)
{%- endmacro %}

{#- Integer division truncating toward zero, on integer operands (DuckDB's `/` would return a double). -#}
{% macro int_div(numerator, denominator) -%}
    {{ return(adapter.dispatch('int_div')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__int_div(numerator, denominator) -%}
    (cast({{ numerator }} as {{ dbt.type_bigint() }}) / cast({{ denominator }} as {{ dbt.type_bigint() }}))
{%- endmacro %}

{% macro duckdb__int_div(numerator, denominator) -%}
    (cast({{ numerator }} as {{ dbt.type_bigint() }}) // cast({{ denominator }} as {{ dbt.type_bigint() }}))
{%- endmacro %}

{#-
    numerator / denominator for integer operands, rounded half away from zero to an integer
    (7/2 -> 4, -7/2 -> -4). Null when the denominator is 0 or null.
-#}
{% macro div_round(numerator, denominator) -%}
    case when ({{ denominator }}) is null or ({{ denominator }}) = 0 or ({{ numerator }}) is null then null
         else (case when (({{ numerator }}) < 0) = (({{ denominator }}) < 0) then 1 else -1 end)
              * {{ int_div('2 * abs(' ~ numerator ~ ') + abs(' ~ denominator ~ ')', '2 * abs(' ~ denominator ~ ')') }}
    end
{%- endmacro %}

{#-
    A ratio of two integer expressions as decimal(18, 4), rounded half away from zero at 4 places, computed
    exactly (integer arithmetic, no float). Null when the denominator is 0 or null.
-#}
{% macro ratio(numerator, denominator) -%}
    cast(cast({{ div_round('(' ~ numerator ~ ') * 10000', denominator) }} as decimal(38, 0))
         * cast(0.0001 as decimal(5, 4)) as decimal(18, 4))
{%- endmacro %}

{#- Hours (exact decimal, 2 places in the ops app) as integer hundredths of an hour, for exact ratios. -#}
{% macro centi_hours(hours_expr) -%}
    cast(round({{ hours_expr }} * 100, 0) as {{ dbt.type_bigint() }})
{%- endmacro %}

{#- The day a month's balances are read: its last day, or the as-of date for the current month. -#}
{% macro analytics_month_close(month_expr) -%}
    case when cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, month_expr)) }} as date) < {{ analytics_as_of_date() }}
         then cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, month_expr)) }} as date)
         else {{ analytics_as_of_date() }} end
{%- endmacro %}

{#- First days of the calendar periods ('week': ISO Mondays, 'month') from the time spine up to the as-of date,
    as a subquery with one column `period_start`. -#}
{% macro analytics_periods(grain) -%}
    (select date_day as period_start
     from {{ ref('metricflow_time_spine') }}
     where date_day = cast({{ dbt.date_trunc(grain, 'date_day') }} as date)
       and date_day <= {{ analytics_as_of_date() }})
{%- endmacro %}
