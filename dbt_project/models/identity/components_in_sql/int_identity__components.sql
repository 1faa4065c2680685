{#-
    Phase 2 of resolution: connected components over every identifier the guard allows, over
    the graph in int_identity__linkable_record_nodes. A component is one person; its id here is
    internal (the smallest node id) — stable profile ids are assigned in
    int_identity__profile_assignments.

    The portable path: the SQL fixpoint, on engines whose dbt does not run Python models
    (enabled in dbt_project.yml); on DuckDB the model of the same name in components_in_memory/
    gives the same components.
-#}
{{ config(post_hook="{{ drop_component_work_tables('int_identity__components') }}") }}

{%- set graph = ref('int_identity__linkable_record_nodes') -%}

{%- if execute -%}
    {%- set labels = connected_components(
        nodes_sql='select node_id from ' ~ graph,
        edges_sql=record_star_edges(graph),
        prefix='int_identity__components',
    ) -%}
{%- else -%}
    {%- set labels = '(select 1 as node_id, 1 as parent)' -%}
{%- endif -%}

select
    node_id,
    parent as component_id
from {{ labels }} as labels
