{#-
    A retired id maps to the end of its chain of merges: no surviving_profile_id may itself
    be a retired id (that would mean a chain was followed only part of the way).
-#}
with

profile_merge_targets as (
    select * from {{ ref('profile_merge_targets') }}
),

final as (
    select
        merged_profile_id,
        surviving_profile_id
    from profile_merge_targets
    where surviving_profile_id in (select retired.merged_profile_id from profile_merge_targets as retired)
)

select * from final
