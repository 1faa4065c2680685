-- The component each identity record resolved to (records with only shared identifiers have none).
with

record_nodes as (
    select * from {{ ref('int_identity__record_nodes') }}
),

components as (
    select * from {{ ref('int_identity__components') }}
),

record_identifiers as (
    select * from {{ ref('int_identity__record_identifiers') }}
),

record_seen as (
    select
        source,
        record_id,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at
    from record_identifiers
    group by source, record_id
),

final as (
    select distinct
        record_nodes.source,
        record_nodes.record_id,
        components.component_id,
        record_seen.first_seen_at,
        record_seen.last_seen_at
    from record_nodes
    inner join components on components.node_id = record_nodes.node_id
    inner join record_seen
        on record_seen.source = record_nodes.source
        and record_seen.record_id = record_nodes.record_id
)

select * from final
