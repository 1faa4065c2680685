-- Every identifier resolved to a profile: the lookup syncs and segments use to go from an email,
-- phone or id to a person.
with

assignments as (
    -- without the profiles erased so far, this build's included (macros/privacy/erasure.sql)
    select * from {{ ref('int_identity__profile_assignments') }}
    where profile_id not in ({{ cdp.erased_profile_ids() }})
),

identifiers as (
    select * from {{ ref('int_identity__identifiers') }}
),

final as (
    select
        assignments.profile_id,
        identifiers.identifier_type,
        identifiers.identifier_value,
        identifiers.source,
        identifiers.record_count,
        identifiers.first_seen_at,
        identifiers.last_seen_at
    from assignments
    inner join identifiers on identifiers.node_id = assignments.node_id
)

select * from final
