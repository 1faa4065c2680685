{#-
    Every retired profile id and the id that person has now: merge chains flattened, so
    whatever is keyed by profile id (manual-segment members, `cdp segments add`) follows a
    merge with one join.

    profile_merges records each merge as it happened (merged → surviving, when). A surviving
    id can be merged later too (a → b, then b → c), so a retired id's current id is the end
    of its chain. Which merges count:
      - an id that is a profile now is not retired (an identifier that disappeared while its
        profile was merged away still carries the old id when it comes back);
      - an id's merge counts only if the id did not survive a later merge (then it was a
        profile again after it was retired).
    So every retired id has one next id, and no chain loops: in a loop, take its latest
    merge a → b; b survived it after b's own merge, so b's merge would not count.

    Chains are followed by a recursive `union` over (retired id, id reached): the pairs are
    finite and `union` adds only new ones, so it stops exactly when every chain has been
    followed to its end. No pass limit, nothing cut short. A chain ends at the first id
    reached that is not retired. (Spark's recursive CTEs take only `union all`: there the
    no-loop argument above is what ends the recursion, and Spark's recursion limit fails the
    build should it ever not.)
-#}
with recursive

profile_merges as (
    select * from {{ ref('profile_merges') }}
),

profiles as (
    select * from {{ ref('profiles') }}
),

last_survivals as (
    select
        surviving_profile_id as profile_id,
        max(merged_at) as last_survived_at
    from profile_merges
    group by surviving_profile_id
),

retirements as (
    -- one per merged id (profile_merges tests that merged_profile_id is unique)
    select
        profile_merges.merged_profile_id,
        profile_merges.surviving_profile_id
    from profile_merges
    left join last_survivals
        on profile_merges.merged_profile_id = last_survivals.profile_id
    where profile_merges.merged_profile_id not in (select profile_id from profiles)
        and (
            last_survivals.last_survived_at is null
            or last_survivals.last_survived_at < profile_merges.merged_at
        )
),

chains (merged_profile_id, reached_profile_id) as (
    select
        merged_profile_id,
        surviving_profile_id
    from retirements

    {{ cdp.recursive_union() }}

    select
        chains.merged_profile_id,
        retirements.surviving_profile_id
    from chains
    inner join retirements
        on chains.reached_profile_id = retirements.merged_profile_id
),

final as (
    select
        merged_profile_id,
        reached_profile_id as surviving_profile_id
    from chains
    where reached_profile_id not in (select merged_profile_id from retirements)
)

select * from final
