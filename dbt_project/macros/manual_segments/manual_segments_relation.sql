{#-
    The relation to read for table `table_name` of source `manual_segments`.

    The CLI (`cdp segments …`) creates those tables the first time it writes. On a warehouse
    where nobody ever ran it they do not exist, and the models read an empty relation with the
    columns and data types declared in _manual_segments__sources.yml instead (the one place
    their shape is defined), so `dbt build` works everywhere. `source()` is always called, so
    the lineage shows the dependency either way.
-#}
{% macro manual_segments_relation(table_name) -%}
    {{- return(cdp.cli_table_relation('manual_segments', table_name)) -}}
{%- endmacro %}

{#-
    The relation to read for table `table_name` of source `source_name`, a table the `cdp` command
    creates the first time it writes (manual_segments, privacy_requests): the table when it exists,
    else an empty relation with the columns and data types its source YAML declares.
-#}
{% macro cli_table_relation(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
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
        if node.source_name == source_name and node.name == table_name -%}
        {%- for column in node.columns.values() -%}
            {%- do columns.append(dbt.cast('null', column.data_type) ~ ' as ' ~ column.name) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- if columns | length == 0 -%}
        {{- exceptions.raise_compiler_error(source_name ~ "." ~ table_name ~ " declares no columns in its sources YAML") -}}
    {%- endif -%}
    {{- return('(select ' ~ columns | join(', ') ~ ' where 1 = 0) as empty_' ~ source_name ~ '_' ~ table_name) -}}
{%- endmacro %}
