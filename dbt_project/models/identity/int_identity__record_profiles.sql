{#-
    The component each identity record resolved to (records with only shared identifiers have none).
    A record's linkable nodes are all in one component (the record links them), so grouping its
    rows by (record_number, component_id) gives one row per record.
-#}
with

record_nodes as (
    select * from {{ ref('int_identity__record_nodes') }}
),

components as (
    select * from {{ ref('int_identity__components') }}
),

final as (
    select
        min(record_nodes.source) as source,
        min(record_nodes.record_id) as record_id,
        components.component_id,
        min(record_nodes.first_seen_at) as first_seen_at,
        max(record_nodes.last_seen_at) as last_seen_at
    from record_nodes
    inner join components on components.node_id = record_nodes.node_id
    group by record_nodes.record_number, components.component_id
)

select * from final
