{#-
    Consent per purpose and erasure requests per profile, over every identifier the profile
    holds (email, phone, customer id). One row per profile with any identifier, one
    has_<purpose>_consent column per purpose of var('consent_purposes').

    1. Per (identifier, purpose), the latest consent event decides; at the same instant a
       revocation beats a grant. A NULL `granted` counts as a revocation.
    2. Per (profile, purpose): consent only when at least one identifier's latest event is a
       grant and none is a revocation. No consent record means no consent: the
       privacy-safe default for both purposes.
    3. var('as_of') can only make the answer stricter: a grant counts when recorded by as_of,
       a revocation or deletion request counts whenever it was recorded, because a build
       with an old as_of must still never sync someone who has opted out or asked to be erased.
    A consent or deletion request recorded against an identifier that resolves to no profile
    (a junk or shared value, see identity_guard_decisions) applies to nobody here.
-#}
{%- set as_of = "cast('" ~ var('as_of') ~ "' as timestamp)" -%}

with

profile_identifiers as (
    select * from {{ ref('profile_identifiers') }}
),

consent_events as (
    select * from {{ ref('stg_privacy__consent_events') }}
),

deletion_requests as (
    select * from {{ ref('stg_privacy__deletion_requests') }}
),

profiles_with_identifiers as (
    select distinct profile_id
    from profile_identifiers
),

known_consent_events as (
    select
        identifier_type,
        identifier_value,
        purpose,
        coalesce(is_granted, false) as is_granted,
        recorded_at
    from consent_events
    where identifier_value is not null
        and (recorded_at <= {{ as_of }} or not coalesce(is_granted, false))
),

ranked_consent_events as (
    select
        *,
        row_number() over (
            partition by identifier_type, identifier_value, purpose
            order by recorded_at desc, case when is_granted then 1 else 0 end
        ) as recency_rank
    from known_consent_events
),

-- one column per purpose, from a loop sqlfluff cannot lay out
-- noqa: disable=LT02
profile_consent as (
    select
        profile_identifiers.profile_id,
        {%- for purpose in var('consent_purposes') %}
        min(case when latest.purpose = '{{ purpose }}' then case when latest.is_granted then 1 else 0 end end)
            as {{ purpose }}_all_granted{{ "," if not loop.last }}
        {%- endfor %}
    from ranked_consent_events as latest
    inner join profile_identifiers
        on profile_identifiers.identifier_type = latest.identifier_type
        and profile_identifiers.identifier_value = latest.identifier_value
    where latest.recency_rank = 1
    group by profile_identifiers.profile_id
),
-- noqa: enable=LT02

profile_deletions as (
    select
        profile_identifiers.profile_id,
        min(deletion_requests.requested_at) as deletion_requested_at
    from deletion_requests
    inner join profile_identifiers
        on profile_identifiers.identifier_type = deletion_requests.identifier_type
        and profile_identifiers.identifier_value = deletion_requests.identifier_value
    group by profile_identifiers.profile_id
),

final as (
    select
        profiles_with_identifiers.profile_id,
        {%- for purpose in var('consent_purposes') %}
        coalesce(profile_consent.{{ purpose }}_all_granted = 1, false) as {{ consent_column(purpose) }},
        {%- endfor %}
        profile_deletions.profile_id is not null as is_deletion_requested,
        profile_deletions.deletion_requested_at
    from profiles_with_identifiers
    left join profile_consent on profile_consent.profile_id = profiles_with_identifiers.profile_id
    left join profile_deletions on profile_deletions.profile_id = profiles_with_identifiers.profile_id
)

select * from final
