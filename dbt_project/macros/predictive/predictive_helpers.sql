{#- Cross-database helpers the predictive models need; each has a portable default. -#}

{#- An 8-byte floating-point type (dbt.type_float() is 4-byte REAL on DuckDB). -#}
{% macro predictive_type_double() -%}
    {{ return(adapter.dispatch('predictive_type_double', 'cdp')()) }}
{%- endmacro %}

{% macro default__predictive_type_double() -%}
    double precision
{%- endmacro %}

{% macro duckdb__predictive_type_double() -%}
    double
{%- endmacro %}

{% macro bigquery__predictive_type_double() -%}
    float64
{%- endmacro %}

{#- Median of an expression (an aggregate). -#}
{% macro predictive_median(expression) -%}
    {{ return(adapter.dispatch('predictive_median', 'cdp')(expression)) }}
{%- endmacro %}

{% macro default__predictive_median(expression) -%}
    percentile_cont(0.5) within group (order by {{ expression }})
{%- endmacro %}

{% macro duckdb__predictive_median(expression) -%}
    median({{ expression }})
{%- endmacro %}
