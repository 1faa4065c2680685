{#-
    The relation to read for table `table_name` of source `manual_segments`.

    The CLI (`cdp segments …`) creates those tables the first time it writes. On a warehouse
    where nobody ever ran it they do not exist, and the models read an empty relation with the
    columns and data types declared in _manual_segments__sources.yml instead (the one place
    their shape is defined), so `dbt build` works everywhere. `source()` is always called, so
    the lineage shows the dependency either way.
-#}
{% macro manual_segments_relation(table_name) -%}
    {%- set relation = source('manual_segments', table_name) -%}
    {%- if not execute or model.resource_type == 'unit_test' -%}
        {{- return(relation) -}}
    {%- endif -%}
    {%- set existing = adapter.get_relation(
        database=relation.database,
        schema=relation.schema,
        identifier=relation.identifier,
    ) -%}
    {%- if existing is not none -%}
        {{- return(relation) -}}
    {%- endif -%}
    {%- set columns = [] -%}
    {%- for node in graph.sources.values()
        if node.source_name == 'manual_segments' and node.name == table_name -%}
        {%- for column in node.columns.values() -%}
            {%- do columns.append(dbt.cast('null', column.data_type) ~ ' as ' ~ column.name) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- if columns | length == 0 -%}
        {{- exceptions.raise_compiler_error("manual_segments." ~ table_name ~ " declares no columns in _manual_segments__sources.yml") -}}
    {%- endif -%}
    {{- return('(select ' ~ columns | join(', ') ~ ' where 1 = 0) as empty_manual_segments_' ~ table_name) -}}
{%- endmacro %}
