{#- Cross-database helpers the predictive models need; each has a portable default. -#}

{#- Median of an expression (an aggregate), as a DOUBLE on every engine: DuckDB's median keeps a decimal's scale (7.99 for 7.99 and 8.00), the others interpolate (7.995). -#}
{% macro predictive_median(expression) -%}
    {{ return(adapter.dispatch('predictive_median', 'cdp')('cast(' ~ expression ~ ' as ' ~ cdp.type_double() ~ ')')) }}
{%- endmacro %}

{% macro default__predictive_median(expression) -%}
    percentile_cont(0.5) within group (order by {{ expression }})
{%- endmacro %}

{% macro duckdb__predictive_median(expression) -%}
    median({{ expression }})
{%- endmacro %}

{% macro spark__predictive_median(expression) -%}
    percentile({{ expression }}, 0.5)
{%- endmacro %}
