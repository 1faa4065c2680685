-- Each record's identifiers as node ids: the input to every edge set below.
with

record_identifiers as (
    select * from {{ ref('int_identity__record_identifiers') }}
),

identifiers as (
    select * from {{ ref('int_identity__identifiers') }}
),

final as (
    select distinct
        record_identifiers.source,
        record_identifiers.record_id,
        identifiers.node_id,
        identifiers.identifier_type,
        identifiers.is_strong
    from record_identifiers
    inner join identifiers
        on identifiers.identifier_type = record_identifiers.identifier_type
        and identifiers.identifier_value = record_identifiers.identifier_value
)

select * from final
