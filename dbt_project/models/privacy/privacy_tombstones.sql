{#-
    What keeps erased people out: one row per tombstoned identifier, kept across builds (appended,
    never rebuilt). Erasing one identifier erases the whole profile, so this holds the tombstone of
    EVERY identifier the erased profile had (email, phone, customer id, loyalty card, device), and a
    request's own tombstone when it matched nobody — any of them arriving again, in a stale export
    or a late event, is kept out by the staging views (macro without_erased), which read this table
    by name. on-run-start creates it (macro create_privacy_tombstones) before those views exist.

    Its post-hook removes this build's erased profiles from the tables written before it or kept
    across builds (macro scrub_erased_profiles).
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        full_refresh=false,
        on_schema_change='append_new_columns',
        post_hook="{{ cdp.scrub_erased_profiles() }}",
    )
}}

{%- set erased_at = "cast('" ~ run_started_at.strftime('%Y-%m-%d %H:%M:%S') ~ "' as " ~ dbt.type_timestamp() ~ ")" %}

with

erasures as (
    select * from {{ ref('privacy_erasures') }}
),

assignments as (
    select * from {{ ref('int_identity__profile_assignments') }}
),

new_erasures as (
    select * from erasures
    where erased_at = {{ erased_at }}
),

profile_identifiers as (
    select
        {{ cdp.tombstone('assignments.identifier_type', 'assignments.identifier_value') }} as tombstone,
        assignments.identifier_type,
        new_erasures.request_id
    from new_erasures
    inner join assignments on assignments.profile_id = new_erasures.profile_id
),

requested as (
    select
        tombstone,
        identifier_type,
        request_id
    from new_erasures
),

candidates as (
    select * from profile_identifiers
    union all
    select * from requested
),

ranked as (
    select
        candidates.*,
        row_number() over (partition by tombstone order by request_id) as tombstone_rank
    from candidates
),

final as (
    select
        tombstone,
        identifier_type,
        request_id,
        {{ erased_at }} as erased_at
    from ranked
    where tombstone_rank = 1
    {%- if is_incremental() %}
        and tombstone not in (select kept.tombstone from {{ this }} as kept)
    {%- endif %}
)

select * from final
