{#-
    A distinct integer for each row of a grouped relation, in no particular order (int_identity__record_nodes
    numbers its records with it). Unordered where the engine allows it, because ordering would sort every
    record key for nothing; Spark requires an ORDER BY in row_number's window, so there it orders by
    `order_by`.
-#}
{% macro unordered_row_number(order_by) -%}
    {{ return(adapter.dispatch('unordered_row_number', 'cdp')(order_by)) }}
{%- endmacro %}

{% macro default__unordered_row_number(order_by) -%}
    row_number() over ()
{%- endmacro %}

{% macro spark__unordered_row_number(order_by) -%}
    row_number() over (order by {{ order_by }})
{%- endmacro %}
