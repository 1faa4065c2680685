{#-
    The audit trail of erasure, and the only memory of an erased person: one row per (deletion
    request × profile it resolved to), kept across builds (appended, never rebuilt: `full_refresh`
    is off, since losing it would let every erased person back in). A request is resolved in the
    build that first sees it, through this build's identity graph: the profile holding the
    requested identifier (NULL when it matched nobody). No email, phone or name: the identifier is
    its tombstone (macros/privacy/erasure.sql).
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        full_refresh=false,
        on_schema_change='append_new_columns',
    )
}}

with

requests as (
    select * from {{ ref('int_privacy__requests') }}
),

assignments as (
    select * from {{ ref('int_identity__profile_assignments') }}
),

new_requests as (
    select *
    from requests
    {%- if is_incremental() %}
    where not exists (
        select 1
        from {{ this }} as erased
        where erased.request_id = requests.request_id
            and erased.source = requests.source
    )
    {%- endif %}
),

profile_tombstones as (
    select distinct
        profile_id,
        identifier_type,
        {{ cdp.tombstone('identifier_type', 'identifier_value') }} as tombstone
    from assignments
    where identifier_type in (select distinct new_requests.identifier_type from new_requests)
),

final as (
    select
        new_requests.request_id,
        profile_tombstones.profile_id,
        new_requests.identifier_type,
        new_requests.tombstone,
        new_requests.requested_at,
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as {{ dbt.type_timestamp() }}) as erased_at,
        new_requests.source
    from new_requests
    left join profile_tombstones
        on profile_tombstones.identifier_type = new_requests.identifier_type
        and profile_tombstones.tombstone = new_requests.tombstone
)

select * from final
