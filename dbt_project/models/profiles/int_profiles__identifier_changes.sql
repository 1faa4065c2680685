{#-
    Identifiers whose profile moved since profile_events was last written (macros/incremental/
    affected_profiles.sql): new ones, ones that moved to another profile (a merge, a split), and
    ones that belong to no profile now (erased, or found shared). Compared with the mapping
    profile_events' post-hook remembered; with none remembered, every identifier is new.
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

final as (
    select
        coalesce(current_identifiers.identifier_type, previous_identifiers.identifier_type) as identifier_type,
        coalesce(current_identifiers.identifier_value, previous_identifiers.identifier_value) as identifier_value,
        previous_identifiers.profile_id as previous_profile_id,
        current_identifiers.profile_id
    from current_identifiers
    full outer join previous_identifiers
        on previous_identifiers.identifier_type = current_identifiers.identifier_type
        and previous_identifiers.identifier_value = current_identifiers.identifier_value
    where current_identifiers.profile_id is null
        or previous_identifiers.profile_id is null
        or current_identifiers.profile_id <> previous_identifiers.profile_id
)

select * from final
