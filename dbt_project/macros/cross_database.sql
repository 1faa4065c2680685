{#-
    Cross-database helpers dbt does not ship. Each has a portable default and, where the
    default does not exist on DuckDB, a `duckdb__` implementation beside it.
-#}

{#- Replace every match of a regular expression. -#}
{% macro regexp_replace_all(expression, pattern, replacement) -%}
    {{ return(adapter.dispatch('regexp_replace_all', 'cdp')(expression, pattern, replacement)) }}
{%- endmacro %}

{% macro default__regexp_replace_all(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, '{{ pattern }}', '{{ replacement }}')
{%- endmacro %}

{% macro duckdb__regexp_replace_all(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, '{{ pattern }}', '{{ replacement }}', 'g')
{%- endmacro %}

{% macro postgres__regexp_replace_all(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, '{{ pattern }}', '{{ replacement }}', 'g')
{%- endmacro %}

{#- True when the whole value matches a regular expression. -#}
{% macro regexp_full_match(expression, pattern) -%}
    {{ return(adapter.dispatch('regexp_full_match', 'cdp')(expression, pattern)) }}
{%- endmacro %}

{% macro default__regexp_full_match(expression, pattern) -%}
    regexp_like({{ expression }}, '^(?:{{ pattern }})$')
{%- endmacro %}

{% macro duckdb__regexp_full_match(expression, pattern) -%}
    regexp_full_match({{ expression }}, '{{ pattern }}')
{%- endmacro %}

{% macro postgres__regexp_full_match(expression, pattern) -%}
    ({{ expression }} ~ '^(?:{{ pattern }})$')
{%- endmacro %}

{% macro bigquery__regexp_full_match(expression, pattern) -%}
    regexp_contains({{ expression }}, r'^(?:{{ pattern }})$')
{%- endmacro %}

{#- Upper-case the first letter of each word, lower-case the rest ("mARY-ann o'neil" -> "Mary-Ann O'Neil"). -#}
{% macro initcap(expression) -%}
    {{ return(adapter.dispatch('initcap', 'cdp')(expression)) }}
{%- endmacro %}

{% macro default__initcap(expression) -%}
    initcap({{ expression }})
{%- endmacro %}

{% macro duckdb__initcap(expression) -%}
    list_aggregate(
        list_transform(
            regexp_extract_all(lower({{ expression }}), '[^\s\-'']+|[\s\-'']+'),
            lambda w: upper(w[1]) || w[2:]
        ),
        'string_agg', ''
    )
{%- endmacro %}

{#- Text value of a top-level key in a JSON text column. -#}
{% macro json_text(expression, key) -%}
    {{ return(adapter.dispatch('json_text', 'cdp')(expression, key)) }}
{%- endmacro %}

{% macro default__json_text(expression, key) -%}
    json_extract_path_text({{ expression }}, '{{ key }}')
{%- endmacro %}

{% macro duckdb__json_text(expression, key) -%}
    json_extract_string({{ expression }}, '$.{{ key }}')
{%- endmacro %}

{% macro bigquery__json_text(expression, key) -%}
    json_value({{ expression }}, '$.{{ key }}')
{%- endmacro %}
