{#-
    Which profile each identifier belongs to, carried from build to build so profile ids
    stay stable (read back by int_identity__profile_assignments). Identifiers that
    disappear from the sources keep their last mapping. Incremental by key on every engine
    (macros/incremental/keyed_incremental.sql: on Spark parquet, a loud full rebuild).
-#}
{#- history, not a cache: `cdp build --full-refresh` keeps it (full_refresh=false), so ids stay stable -#}
{{
    config(
        materialized=cdp.keyed_incremental_materialization(),
        unique_key=['identifier_type', 'identifier_value'],
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

final as (
    select
        identifier_type,
        identifier_value,
        profile_id,
        profile_first_seen_at,
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as {{ dbt.type_timestamp() }}) as assigned_at
    from assignments
)

select * from final
{{ cdp.previous_build_rows_not_replaced(['identifier_type', 'identifier_value']) }}
