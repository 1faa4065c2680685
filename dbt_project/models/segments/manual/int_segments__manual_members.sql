{#-
    Members of every manual segment, under the profile ids people have now.

    A member is stored under the profile id it had when it was added. If identity resolution
    later merged that profile into another, profile_merge_targets gives the id the person has
    now (chains of merges already followed), so the person stays a member under it. Two
    stored ids that now name one person give one row. Ids that are no longer in `profiles`
    (an erased person) drop out.
-#}

with

members as (
    select * from {{ manual_segments_relation('members') }}
),

definitions as (
    select * from {{ manual_segments_relation('definitions') }}
),

profile_merge_targets as (
    select * from {{ ref('profile_merge_targets') }}
),

profiles as (
    select * from {{ ref('profiles') }}
),

current_members as (
    select distinct
        members.segment_name,
        coalesce(profile_merge_targets.surviving_profile_id, members.profile_id) as profile_id
    from members
    left join profile_merge_targets
        on members.profile_id = profile_merge_targets.merged_profile_id
),

final as (
    select
        current_members.segment_name,
        current_members.profile_id
    from current_members
    inner join definitions
        on current_members.segment_name = definitions.segment_name
    inner join profiles
        on current_members.profile_id = profiles.profile_id
)

select * from final
