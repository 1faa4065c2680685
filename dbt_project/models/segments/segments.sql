{#-
    One row per segment: every model under models/segments/audiences/ (rule, predictive,
    cluster and manual segments), with its member count. A view over the registry the
    segment models write (macros/segments/segment_registry.sql), limited to segment models
    that exist in the project now.
-#}
{{ config(materialized='view') }}

with

definitions as (
    select * from {{ segment_registry_relation('definitions') }}
    where source_model in ({{ segment_source_models() }})
),

members as (
    select * from {{ segment_registry_relation('members') }}
),

sizes as (
    select
        segment_name,
        count(*) as member_count
    from members
    group by segment_name
),

final as (
    select
        definitions.segment_name,
        definitions.segment_type,
        definitions.description,
        definitions.owner,
        cast(coalesce(sizes.member_count, 0) as bigint) as member_count,
        cast(definitions.min_size as integer) as min_size,
        definitions.source_model,
        definitions.refreshed_at
    from definitions
    left join sizes on sizes.segment_name = definitions.segment_name
)

select * from final
