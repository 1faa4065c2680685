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

{#- Create the registry tables if missing (on-run-start). One statement per query: dbt-spark sends one at a time. -#}
{% macro create_segment_registry() %}
    {%- set string = dbt.type_string() -%}
    {%- set timestamp = dbt.type_timestamp() -%}
    {%- do cdp.run_statements([
        cdp.create_table_if_missing(segment_registry_relation('definitions'),
            'source_model ' ~ string ~ ', segment_name ' ~ string ~ ', segment_type ' ~ string ~ ', description '
            ~ string ~ ', owner ' ~ string ~ ', min_size integer, refreshed_at ' ~ timestamp),
        cdp.create_table_if_missing(segment_registry_relation('members'),
            'source_model ' ~ string ~ ', segment_name ' ~ string ~ ', profile_id ' ~ string),
        cdp.create_table_if_missing(segment_registry_relation('history'),
            'segment_name ' ~ string ~ ', profile_id ' ~ string ~ ', entered_at ' ~ timestamp ~ ', exited_at ' ~ timestamp),
    ]) -%}
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
    {%- set definition_rows = segment_definition_rows(this, name_expression, description_expression, source_model,
        meta.get('type', 'rule'), owner_expression, meta.get('min_size', 0), built_at) -%}
    {%- set member_rows = segment_member_rows(this, name_expression, source_model) -%}
    {%- do cdp.run_statements(record_segment_statements(source_model, definition_rows, member_rows, built_at)) -%}
{% endmacro %}

{#- This model's rows for the definitions registry: one per segment it holds. -#}
{% macro segment_definition_rows(relation, name_expression, description_expression, source_model, segment_type, owner_expression, min_size, built_at) %}
    {%- if name_expression == 'segment_name' %}
    select
        {{ source_model }} as source_model,
        segment_name,
        '{{ segment_type }}' as segment_type,
        {{ description_expression }} as description,
        {{ owner_expression }} as owner,
        {{ min_size | int }} as min_size,
        {{ built_at }} as refreshed_at
    from {{ relation }}
    where segment_name is not null
    group by segment_name
    {%- else %}
    -- one segment per model: defined even while empty
    select
        {{ source_model }} as source_model,
        {{ name_expression }} as segment_name,
        '{{ segment_type }}' as segment_type,
        {{ description_expression }} as description,
        {{ owner_expression }} as owner,
        {{ min_size | int }} as min_size,
        {{ built_at }} as refreshed_at
    {%- endif %}
{% endmacro %}

{#- This model's rows for the members registry. -#}
{% macro segment_member_rows(relation, name_expression, source_model) %}
    select distinct
        {{ source_model }} as source_model,
        {{ name_expression }} as segment_name,
        cast(profile_id as {{ dbt.type_string() }}) as profile_id
    from {{ relation }}
    where profile_id is not null
{% endmacro %}

{#-
    The statements that replace this model's rows in the definitions and members registries, then
    close the stays of people no longer in its segments (and of segments no longer defined by
    any model) and open stays for newcomers. DuckDB and Postgres (and Spark on Delta or
    Iceberg): DELETE, INSERT and UPDATE, inside the model's transaction where there is one.
-#}
{% macro record_segment_statements(source_model, definition_rows, member_rows, built_at) %}
    {{ return(adapter.dispatch('record_segment_statements', 'cdp')(source_model, definition_rows, member_rows, built_at)) }}
{% endmacro %}

{% macro default__record_segment_statements(source_model, definition_rows, member_rows, built_at) %}
    {%- set definitions = segment_registry_relation('definitions') -%}
    {%- set members = segment_registry_relation('members') -%}
    {%- set history = segment_registry_relation('history') -%}
    {%- set close_stays -%}
        update {{ history }} as history
        set exited_at = {{ built_at }}
        where exited_at is null
            and (
                segment_name in (select segment_name from {{ definitions }} where source_model = {{ source_model }})
                or segment_name not in (select segment_name from {{ definitions }})
            )
            and not exists (
                select 1 from {{ members }} as members
                where members.segment_name = history.segment_name
                    and members.profile_id = history.profile_id
            )
    {%- endset -%}
    {%- set open_stays -%}
        insert into {{ history }}
        select members.segment_name, members.profile_id, {{ built_at }}, null
        from {{ members }} as members
        where members.source_model = {{ source_model }}
            and not exists (
                select 1 from {{ history }} as history
                where history.segment_name = members.segment_name
                    and history.profile_id = members.profile_id
                    and history.exited_at is null
            )
    {%- endset -%}
    {{ return([
        'delete from ' ~ definitions ~ ' where source_model = ' ~ source_model,
        'insert into ' ~ definitions ~ ' ' ~ definition_rows,
        'delete from ' ~ members ~ ' where source_model = ' ~ source_model,
        'insert into ' ~ members ~ ' ' ~ member_rows,
        close_stays,
        open_stays,
    ]) }}
{% endmacro %}

{#-
    Spark on plain parquet has no DELETE or UPDATE: each registry table is rewritten whole. Its
    new rows go to a work table first (Spark cannot overwrite a table it is reading), then
    INSERT OVERWRITE puts them back. Not atomic across the three tables, and a read-modify-write
    of a shared table: the spark targets run one thread (profiles.yml), and the build refuses more.
-#}
{% macro spark__record_segment_statements(source_model, definition_rows, member_rows, built_at) %}
    {%- if cdp.table_format() in ['delta', 'iceberg', 'hudi'] -%}
        {{ return(cdp.default__record_segment_statements(source_model, definition_rows, member_rows, built_at)) }}
    {%- endif -%}
    {%- if target.threads > 1 -%}
        {{ exceptions.raise_compiler_error(
            "Segment models rewrite the shared registry tables, which Spark on " ~ cdp.table_format()
            ~ " can only overwrite whole: set `threads: 1` for target " ~ target.name ~ " in profiles.yml"
            ~ " (or use file format delta / iceberg: CDP_SPARK_FILE_FORMAT).") }}
    {%- endif -%}
    {%- set definitions = segment_registry_relation('definitions') -%}
    {%- set members = segment_registry_relation('members') -%}
    {%- set history = segment_registry_relation('history') -%}
    {%- set new_definitions -%}
        select * from {{ definitions }} where source_model <> {{ source_model }}
        union all
        {{ definition_rows }}
    {%- endset -%}
    {%- set new_members -%}
        select * from {{ members }} where source_model <> {{ source_model }}
        union all
        {{ member_rows }}
    {%- endset -%}
    {%- set new_history -%}
        select
            history.segment_name,
            history.profile_id,
            history.entered_at,
            case
                when history.exited_at is null
                    and (own.segment_name is not null or defined.segment_name is null)
                    and current_members.profile_id is null
                    then {{ built_at }}
                else history.exited_at
            end as exited_at
        from {{ history }} as history
        left join (select distinct segment_name from {{ definitions }} where source_model = {{ source_model }}) as own
            on own.segment_name = history.segment_name
        left join (select distinct segment_name from {{ definitions }}) as defined
            on defined.segment_name = history.segment_name
        left join (select distinct segment_name, profile_id from {{ members }}) as current_members
            on current_members.segment_name = history.segment_name
            and current_members.profile_id = history.profile_id
        union all
        select members.segment_name, members.profile_id, {{ built_at }}, cast(null as {{ dbt.type_timestamp() }})
        from {{ members }} as members
        left join (select segment_name, profile_id from {{ history }} where exited_at is null) as open_stays
            on open_stays.segment_name = members.segment_name
            and open_stays.profile_id = members.profile_id
        where members.source_model = {{ source_model }}
            and open_stays.profile_id is null
    {%- endset -%}
    {%- set statements = [] -%}
    {%- for kind, rows in [('definitions', new_definitions), ('members', new_members), ('history', new_history)] -%}
        {%- do statements.extend(cdp.overwrite_through_work_table(
            segment_registry_relation(kind), segment_registry_relation(kind ~ '__work'), rows)) -%}
    {%- endfor -%}
    {{ return(statements) }}
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
