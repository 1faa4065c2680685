{#-
    Phase 2 of resolution: connected components over every identifier the guard allows.
    A component is one person; its id here is internal (the smallest node id) — stable
    profile ids are assigned in int_identity__profile_assignments.
-#}
{{ config(post_hook="{{ drop_component_work_tables('int_identity__components') }}") }}

{%- set record_nodes = ref('int_identity__record_nodes') -%}
{%- set guard = ref('identity_guard_decisions') -%}
{%- set linkable_nodes_sql -%}
    select record_nodes.*
    from {{ record_nodes }} as record_nodes
    where node_id not in (select node_id from {{ guard }} where is_shared)
{%- endset -%}

{%- if execute -%}
    {%- set labels = connected_components(
        nodes_sql='select node_id from (' ~ linkable_nodes_sql ~ ') as linkable_nodes',
        edges_sql=record_star_edges(linkable_nodes_sql),
        prefix='int_identity__components',
    ) -%}
{%- else -%}
    {%- set labels = '(select 1 as node_id, 1 as parent)' -%}
{%- endif -%}

select
    node_id,
    parent as component_id
from {{ labels }} as labels
