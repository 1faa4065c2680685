{#-
    Phase 1 of resolution: groups of records joined by strong identifiers only (email,
    customer id), over the graph in int_identity__strong_record_nodes. The guard then asks of
    each weak identifier how many of these groups it would join.

    The portable path: the SQL fixpoint, on engines whose dbt does not run Python models
    (enabled in dbt_project.yml); on DuckDB the model of the same name in components_in_memory/
    gives the same groups.
-#}
{{ config(post_hook="{{ drop_component_work_tables('int_identity__strong') }}") }}

{%- set graph = ref('int_identity__strong_record_nodes') -%}

{%- if execute -%}
    {%- set labels = connected_components(
        nodes_sql='select node_id from ' ~ graph,
        edges_sql=record_star_edges(graph),
        prefix='int_identity__strong',
    ) -%}
{%- else -%}
    {%- set labels = '(select 1 as node_id, 1 as parent)' -%}
{%- endif -%}

select
    node_id,
    parent as group_id
from {{ labels }} as labels
