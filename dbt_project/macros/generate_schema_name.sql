{#-
    Use custom schema names as given (`staging`, not `main_staging`): the data contract
    names the schemas users and syncs read, so they must not depend on the target.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
