-- Who is in which segment now: one row per (segment, profile). A view over the segment registry.
{{ config(materialized='view') }}

with

definitions as (
    select * from {{ segment_registry_relation('definitions') }}
    where source_model in ({{ segment_source_models() }})
),

members as (
    select * from {{ segment_registry_relation('members') }}
),

final as (
    select
        members.segment_name,
        members.profile_id
    from members
    inner join definitions
        on definitions.segment_name = members.segment_name
        and definitions.source_model = members.source_model
)

select * from final
