{#-
    How a segment model lands in `segments`, `segment_membership` and
    `segment_membership_history` without anyone editing those models.

    dbt cannot `ref` models it discovers (its graph is empty at parse time), so instead every
    model under models/segments/audiences/ records itself: a folder-level post-hook
    (`record_segment`) writes the segment's definition and current members to registry
    tables and opens / closes stays in the history. The public models are views over the
    registries, filtered to segment models that still exist in the project, so build order
    never matters and deleting a segment's file removes it.

    A segment model returns `profile_id` (plus any columns syncs may map). A model may hold
    several segments by returning a `segment_name` column (cluster and manual segments do);
    then optional `segment_description` / `segment_owner` columns describe each, and a row
    with a NULL profile_id declares a segment that has no members yet.
-#}

{%- macro segment_registry_relation(kind) -%}
    {{ adapter.quote(target.schema) }}.{{ adapter.quote('segment_registry_' ~ kind) }}
{%- endmacro -%}

{#- Create the registry tables if missing (on-run-start). -#}
{% macro create_segment_registry() %}
    create table if not exists {{ segment_registry_relation('definitions') }} (
        source_model {{ dbt.type_string() }},
        segment_name {{ dbt.type_string() }},
        segment_type {{ dbt.type_string() }},
        description {{ dbt.type_string() }},
        owner {{ dbt.type_string() }},
        min_size integer,
        refreshed_at {{ dbt.type_timestamp() }}
    );
    create table if not exists {{ segment_registry_relation('members') }} (
        source_model {{ dbt.type_string() }},
        segment_name {{ dbt.type_string() }},
        profile_id {{ dbt.type_string() }}
    );
    create table if not exists {{ segment_registry_relation('history') }} (
        segment_name {{ dbt.type_string() }},
        profile_id {{ dbt.type_string() }},
        entered_at {{ dbt.type_timestamp() }},
        exited_at {{ dbt.type_timestamp() }}
    );
{% endmacro %}

{#- Post-hook of every segment model: record definition, members and history. -#}
{% macro record_segment() %}
    {%- set meta = model.config.get('meta', {}).get('segment', {}) -%}
    {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
    {%- set name_expression = 'segment_name' if 'segment_name' in columns else "'" ~ this.identifier ~ "'" -%}
    {%- set description_expression = 'max(segment_description)' if 'segment_description' in columns
        else "'" ~ (model.description | replace("'", "''") | trim) ~ "'" -%}
    {%- set owner_expression = 'max(segment_owner)' if 'segment_owner' in columns
        else ("'" ~ meta.get('owner') ~ "'" if meta.get('owner') else 'null') -%}
    {%- set built_at = "cast('" ~ run_started_at.strftime('%Y-%m-%d %H:%M:%S') ~ "' as " ~ dbt.type_timestamp() ~ ")" -%}
    {%- set source_model = "'" ~ this.identifier ~ "'" -%}
    {{ record_segment_rows(this, name_expression, description_expression, source_model,
        meta.get('type', 'rule'), owner_expression, meta.get('min_size', 0), built_at) }}
{% endmacro %}

{% macro record_segment_rows(relation, name_expression, description_expression, source_model, segment_type, owner_expression, min_size, built_at) %}
    delete from {{ segment_registry_relation('definitions') }} where source_model = {{ source_model }};
    insert into {{ segment_registry_relation('definitions') }}
    {%- if name_expression == 'segment_name' %}
    select
        {{ source_model }},
        segment_name,
        '{{ segment_type }}',
        {{ description_expression }},
        {{ owner_expression }},
        {{ min_size | int }},
        {{ built_at }}
    from {{ relation }}
    where segment_name is not null
    group by segment_name
    {%- else %}
    -- one segment per model: defined even while empty
    select
        {{ source_model }},
        {{ name_expression }},
        '{{ segment_type }}',
        {{ description_expression }},
        {{ owner_expression }},
        {{ min_size | int }},
        {{ built_at }}
    {%- endif %};

    delete from {{ segment_registry_relation('members') }} where source_model = {{ source_model }};
    insert into {{ segment_registry_relation('members') }}
    select distinct {{ source_model }}, {{ name_expression }}, cast(profile_id as {{ dbt.type_string() }})
    from {{ relation }}
    where profile_id is not null;

    {{ record_segment_history(source_model, built_at) }}
{% endmacro %}

{#- Close stays of people no longer in this model's segments; open stays for newcomers. -#}
{% macro record_segment_history(source_model, built_at) %}
    update {{ segment_registry_relation('history') }} as history
    set exited_at = {{ built_at }}
    where exited_at is null
        and (
            segment_name in (select segment_name from {{ segment_registry_relation('definitions') }} where source_model = {{ source_model }})
            or segment_name not in (select segment_name from {{ segment_registry_relation('definitions') }})
        )
        and not exists (
            select 1 from {{ segment_registry_relation('members') }} as members
            where members.segment_name = history.segment_name
                and members.profile_id = history.profile_id
        );

    insert into {{ segment_registry_relation('history') }}
    select members.segment_name, members.profile_id, {{ built_at }}, null
    from {{ segment_registry_relation('members') }} as members
    where members.source_model = {{ source_model }}
        and not exists (
            select 1 from {{ segment_registry_relation('history') }} as history
            where history.segment_name = members.segment_name
                and history.profile_id = members.profile_id
                and history.exited_at is null
        );
{% endmacro %}

{#- Names of the segment models in this project (at execution time), quoted for an IN list. -#}
{% macro segment_source_models() %}
    {%- set names = [] -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values()
            if node.resource_type == 'model' and 'segment' in node.tags -%}
            {%- do names.append("'" ~ node.name ~ "'") -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(names | join(', ') if names else "''") }}
{% endmacro %}
