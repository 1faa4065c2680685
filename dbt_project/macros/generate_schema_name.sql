{#-
    Which schema each model lands in, decided here once:
      - a custom schema set in dbt_project.yml (`staging`) is used as given (`staging`, not
        `main_staging`): the data contract names the schemas users and syncs read, so they
        must not depend on the target;
      - an intermediate model (name starting with `int_`, in whatever folder: identity,
        attributes, predictive, segments/manual) goes to schema `intermediate`: building
        blocks of the public models, read by no user, sync or product code;
      - every other model is public and goes to the target's schema (`main`).
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is not none -%}
        {{ custom_schema_name | trim }}
    {%- elif node.resource_type == 'model' and node.name.startswith('int_') -%}
        intermediate
    {%- else -%}
        {{ target.schema }}
    {%- endif -%}
{%- endmacro %}
