{#-
    The profiles whose per-profile attributes this build recomputes (macros/incremental/
    affected_profiles.sql): the old and the new profile of every identifier that moved, and the
    profile of every event attributed again. Everyone (is_everyone on the row without a profile) when
    the settings fingerprint (as_of and the incremental models' code) differs from the previous
    build's, or on a full rebuild: the per-profile models then recompute every row.
-#}
{%- set incremental = cdp.lists_affected_profiles() -%}
{%- set fingerprint = cdp.incremental_settings_fingerprint() -%}
{{ config(pre_hook="{{ cdp.keep_event_candidates() }}") }}

with

{%- if incremental %}

changes as (
    select * from {{ ref('int_profiles__identifier_changes') }}
),

-- this build's candidates, kept as a table by the pre-hook (profile_events reads them too)
-- depends_on: {{ ref('int_profiles__event_candidates') }}
candidates as (
    select * from {{ cdp.kept_event_candidates_relation() }}
),

affected as (
    select previous_profile_id as profile_id from changes where previous_profile_id is not null
    union
    select profile_id from changes where profile_id is not null
    union
    select profile_id from candidates where profile_id is not null
),
{%- else %}

-- a full rebuild, or as_of or an incremental model's code changed: everyone (the sentinel row says so)
-- depends_on: {{ ref('int_profiles__identifier_changes') }}, {{ ref('int_profiles__event_candidates') }}
affected as (
    select cast(null as {{ dbt.type_string() }}) as profile_id
    where 1 = 0
),
{%- endif %}

final as (
    select
        profile_id,
        '{{ fingerprint }}' as settings_fingerprint,
        false as is_everyone,
        cast(null as {{ dbt.type_string() }}) as invocation_id
    from affected
    -- one row even when nothing changed: the fingerprint for the next build, and whether this one
    -- recomputes everyone (the per-profile models then rebuild all their rows)
    union all
    select
        cast(null as {{ dbt.type_string() }}) as profile_id,
        '{{ fingerprint }}' as settings_fingerprint,
        {{ 'false' if incremental else 'true' }} as is_everyone,
        -- the dbt invocation that computed the changes this list comes from: a model reading it in
        -- another (a selection that left them out) cannot trust it, and recomputes everything instead
        {%- if incremental %}
        (select changes.invocation_id from changes where changes.invocation_id is not null) as invocation_id
        {%- else %}
        '{{ invocation_id }}' as invocation_id
        {%- endif %}
)

select * from final
