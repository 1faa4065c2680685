{#-
    Identifiers whose profile moved since profile_events was last written (macros/incremental/
    affected_profiles.sql): new ones, ones that moved to another profile (a merge, a split), and
    ones that belong to no profile now (erased, or found shared: named by their former profile
    alone, so no erased value is kept). Compared with the mapping profile_events' post-hook
    remembered; with none remembered, every identifier is new.
    Empty on a full rebuild, where nothing downstream reads it.
-#}
{%- set remembered = none -%}
{%- if cdp.updates_in_place('profile_events') -%}
    {%- set copy = cdp.attributed_identifiers_relation() -%}
    {%- set remembered = adapter.get_relation(database=copy.database, schema=copy.schema, identifier=copy.identifier) -%}
{%- endif %}

with

current_identifiers as (
    select
        profile_id,
        identifier_type,
        identifier_value
    from {{ ref('profile_identifiers') }}
    {%- if not cdp.updates_in_place('profile_events') %}
    where 1 = 0
    {%- endif %}
),

previous_identifiers as (
    {%- if remembered is not none %}
    select
        profile_id,
        identifier_type,
        identifier_value
    from {{ remembered }}
    {%- else %}
    select
        profile_id,
        identifier_type,
        identifier_value
    from current_identifiers
    where 1 = 0
    {%- endif %}
),

changed as (
    select
        current_identifiers.identifier_type,
        current_identifiers.identifier_value,
        previous_identifiers.profile_id as previous_profile_id,
        current_identifiers.profile_id
    from current_identifiers
    full outer join previous_identifiers
        on previous_identifiers.identifier_type = current_identifiers.identifier_type
        and previous_identifiers.identifier_value = current_identifiers.identifier_value
    where current_identifiers.profile_id is null
        or previous_identifiers.profile_id is null
        or current_identifiers.profile_id <> previous_identifiers.profile_id
),

final as (
    -- an identifier that belongs to no profile now (erased, or shared) is named by its former profile
    -- only: that profile's events are attributed again, and an erased value is kept nowhere
    select distinct
        identifier_type,
        identifier_value,
        previous_profile_id,
        profile_id,
        cast(null as {{ dbt.type_string() }}) as invocation_id
    from changed
    -- an erased profile's id is kept nowhere but the audit trail: the incremental models delete
    -- erased profiles' rows by privacy_erasures instead (macros/incremental/affected_profiles.sql)
    where coalesce(previous_profile_id, '') not in ({{ cdp.erased_profile_ids() }})
        and coalesce(profile_id, '') not in ({{ cdp.erased_profile_ids() }})
    -- one row without an identifier: the dbt invocation that computed these changes
    -- (int_profiles__affected_profiles passes it on; a later invocation must not trust them)
    union all
    select
        cast(null as {{ dbt.type_string() }}) as identifier_type,
        cast(null as {{ dbt.type_string() }}) as identifier_value,
        cast(null as {{ dbt.type_string() }}) as previous_profile_id,
        cast(null as {{ dbt.type_string() }}) as profile_id,
        '{{ invocation_id }}' as invocation_id
)

select * from final
