{#-
    Which profile each identifier belongs to, carried from build to build so profile ids
    stay stable (read back by int_identity__profile_assignments). Identifiers that
    disappear from the sources keep their last mapping.
-#}
{{
    config(
        materialized='incremental',
        unique_key=['identifier_type', 'identifier_value'],
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
    )
}}

with

assignments as (
    select * from {{ ref('int_identity__profile_assignments') }}
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
