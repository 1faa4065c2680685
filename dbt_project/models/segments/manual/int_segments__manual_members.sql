{#-
    Members of every manual segment, under the profile ids people have now.

    A member is stored under the profile id it had when it was added. If identity resolution
    later merged that profile into another, profile_merges records it (merged → surviving,
    and a surviving id can itself be merged later: a chain). Each stored id is walked along
    its chain to the end, so the person stays a member under the surviving id. Two stored ids
    that now name one person give one row. Ids that are no longer in `profiles` (an erased
    person) drop out.
-#}

{%- set max_merge_hops = 64 -%}

with recursive

members as (
    select * from {{ manual_segments_relation('members') }}
),

definitions as (
    select * from {{ manual_segments_relation('definitions') }}
),

profile_merges as (
    select * from {{ ref('profile_merges') }}
),

profiles as (
    select * from {{ ref('profiles') }}
),

stored_ids as (
    select distinct profile_id from members
),

-- every id a stored id passed through: a → b, then b → c gives (a, b, 1) and (a, c, 2)
merge_chains as (
    select
        stored_ids.profile_id as stored_profile_id,
        profile_merges.surviving_profile_id,
        1 as hops
    from stored_ids
    inner join profile_merges
        on stored_ids.profile_id = profile_merges.merged_profile_id

    union all

    select
        merge_chains.stored_profile_id,
        profile_merges.surviving_profile_id,
        merge_chains.hops + 1 as hops
    from merge_chains
    inner join profile_merges
        on merge_chains.surviving_profile_id = profile_merges.merged_profile_id
    where merge_chains.hops < {{ max_merge_hops }}
),

chain_lengths as (
    select
        stored_profile_id,
        max(hops) as hops
    from merge_chains
    group by stored_profile_id
),

chain_ends as (
    select
        merge_chains.stored_profile_id,
        merge_chains.surviving_profile_id
    from merge_chains
    inner join chain_lengths
        on merge_chains.stored_profile_id = chain_lengths.stored_profile_id
        and merge_chains.hops = chain_lengths.hops
),

resolved_members as (
    select distinct
        members.segment_name,
        coalesce(chain_ends.surviving_profile_id, members.profile_id) as profile_id
    from members
    left join chain_ends
        on members.profile_id = chain_ends.stored_profile_id
),

final as (
    select
        resolved_members.segment_name,
        resolved_members.profile_id
    from resolved_members
    inner join definitions
        on resolved_members.segment_name = definitions.segment_name
    inner join profiles
        on resolved_members.profile_id = profiles.profile_id
)

select * from final
