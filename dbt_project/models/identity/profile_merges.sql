{#-
    One row per profile id that new data merged into another: the merged (retired) id, the
    surviving id, and when. Anything keyed by profile id (manual segments, sync state)
    follows these rows.
-#}
{#- history, not a cache: `cdp build --full-refresh` keeps it (full_refresh=false), so ids stay stable -#}
{{
    config(
        materialized=cdp.keyed_incremental_materialization(),
        unique_key=['merged_profile_id', 'surviving_profile_id'],
        incremental_strategy=cdp.keyed_incremental_strategy(),
        on_schema_change='append_new_columns',
        post_hook="{{ cdp.drop_previous_build_copy() }}",
        full_refresh=false,
    )
}}

with

assignments as (
    -- without the profiles erased so far, this build's included (macros/privacy/erasure.sql)
    select * from {{ ref('int_identity__profile_assignments') }}
    where profile_id not in ({{ cdp.erased_profile_ids() }})
),

current_profiles as (
    select distinct profile_id from assignments
),

final as (
    select distinct
        assignments.previous_profile_id as merged_profile_id,
        assignments.profile_id as surviving_profile_id,
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as {{ dbt.type_timestamp() }}) as merged_at
    from assignments
    where assignments.previous_profile_id is not null
        and assignments.previous_profile_id <> assignments.profile_id
        -- a retired id, not one still held by the other part of a split
        and assignments.previous_profile_id not in (select profile_id from current_profiles)
)

select * from final
{{ cdp.previous_build_rows_not_replaced(['merged_profile_id', 'surviving_profile_id']) }}
