{#-
    Which profile each source record belongs to: the records identity resolution linked
    (see int_identity__record_identifiers for what a record is per source), with the
    profile id people are known by. Records whose only identifiers are shared or junk
    belong to no profile and are not here.
-#}
with

record_profiles as (
    select * from {{ ref('int_identity__record_profiles') }}
),

assignments as (
    -- without the profiles erased so far, this build's included (macros/privacy/erasure.sql)
    select * from {{ ref('int_identity__profile_assignments') }}
    where profile_id not in ({{ cdp.erased_profile_ids() }})
),

component_profiles as (
    select distinct
        component_id,
        profile_id
    from assignments
),

final as (
    select
        component_profiles.profile_id,
        record_profiles.source,
        record_profiles.record_id,
        record_profiles.first_seen_at,
        record_profiles.last_seen_at
    from record_profiles
    inner join component_profiles
        on record_profiles.component_id = component_profiles.component_id
)

select * from final
