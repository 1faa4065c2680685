{#-
    One row per stay of a profile in a segment: entered_at is the start of the build that
    first saw them in it, exited_at the start of the build that first saw them gone (NULL
    while they are still in). "Who joined since yesterday" is
    `where entered_at >= current_date - 1`. Stays are recorded by each segment model's
    post-hook; a deleted segment's open stays close at the next build of any segment.
-#}
{{ config(materialized='view') }}

with

history as (
    select * from {{ segment_registry_relation('history') }}
),

final as (
    select
        segment_name,
        profile_id,
        entered_at,
        exited_at,
        exited_at is null as is_current
    from history
)

select * from final
