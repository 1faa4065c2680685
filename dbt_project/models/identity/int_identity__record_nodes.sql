{#-
    Each record's identifiers as node ids: the input to every edge set below. record_number is
    an integer standing for (source, record_id), one per record, so the component graphs group
    and join records on an integer rather than on two strings (it is internal: it is not stable
    from build to build, and nothing downstream of identity reads it). first_seen_at / last_seen_at
    are the record's (the same on each of its rows), so int_identity__record_profiles needs no
    second pass over the record identifiers.
-#}
with

record_identifiers as (
    select * from {{ ref('int_identity__record_identifiers') }}
),

identifiers as (
    select * from {{ ref('int_identity__identifiers') }}
),

record_nodes as (
    select distinct
        record_identifiers.source,
        record_identifiers.record_id,
        identifiers.node_id,
        identifiers.identifier_type,
        identifiers.is_strong,
        record_identifiers.first_seen_at,
        record_identifiers.last_seen_at
    from record_identifiers
    inner join identifiers
        on identifiers.identifier_type = record_identifiers.identifier_type
        and identifiers.identifier_value = record_identifiers.identifier_value
),

records as (
    select
        source,
        record_id,
        cast({{ cdp.unordered_row_number('source, record_id') }} as bigint) as record_number
    from record_nodes
    group by source, record_id
),

final as (
    select
        record_nodes.source,
        record_nodes.record_id,
        records.record_number,
        record_nodes.node_id,
        record_nodes.identifier_type,
        record_nodes.is_strong,
        record_nodes.first_seen_at,
        record_nodes.last_seen_at
    from record_nodes
    inner join records
        on records.source = record_nodes.source
        and records.record_id = record_nodes.record_id
)

select * from final
