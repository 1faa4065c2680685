{#-
    Erasure: how a deletion request makes a person disappear from every table the project writes.

    1. Requests (raw.deletion_requests, and `cdp forget` in privacy.forget_requests) are hashed into
       tombstones: hex sha256 of `salt:identifier_type:normalised value` (macro tombstone; the salt is
       var privacy_tombstone_salt, env CDP_TOMBSTONE_SALT). Python computes the same hash
       (cdp/privacy/tombstones.py) for `cdp forget`, which therefore stores no identifier at all.
    2. privacy_erasures resolves each new request through this build's identity graph to the profile
       holding the identifier; privacy_tombstones keeps the tombstone of EVERY identifier of that
       profile (so any of them returning is blocked), and the request's own when it matched nobody.
    3. Every staging view keeps out a source record carrying any tombstoned identifier (macro
       without_erased; the views read privacy_tombstones by name, so they follow it as soon as it
       changes, within the same build). A stale export bringing the person back is dropped there.
       The staging tables of append-only events (macros/incremental/append_only_staging.sql) keep
       out new rows the same way; their rows staged before the erasure go in step 4.
    4. The models after privacy_tombstones leave erased profiles out (macro erased_profile_ids); the
       identity building blocks written before it in this build, the incremental identity tables,
       the segment registry and the manual lists are scrubbed by privacy_tombstones' post-hook
       (macro scrub_erased_profiles). The next build rebuilds the building blocks without them anyway.
-#}

{#- lower-case hex SHA-256 of a text, the same digest on every engine (as destinations/sql/_dialect.sql's sha256). -#}
{% macro sha256_hex(expression) -%}
    {{ return(adapter.dispatch('sha256_hex', 'cdp')(expression)) }}
{%- endmacro %}

{% macro default__sha256_hex(expression) -%}
    sha256({{ expression }})
{%- endmacro %}

{% macro postgres__sha256_hex(expression) -%}
    encode(sha256(convert_to({{ expression }}, 'UTF8')), 'hex')
{%- endmacro %}

{% macro spark__sha256_hex(expression) -%}
    sha2({{ expression }}, 256)
{%- endmacro %}

{#- The tombstone of a normalised identifier: sha256 of `salt:type:value` (NULL for a NULL value). -#}
{% macro tombstone(type_expression, value_expression) -%}
    {%- set salt = var('privacy_tombstone_salt') | string | replace("'", "''") -%}
    {{ cdp.sha256_hex("'" ~ salt ~ ":' || " ~ type_expression ~ " || ':' || " ~ value_expression) }}
{%- endmacro %}

{#- Where the tombstones live: read by name (staging views cannot ref a model built after them). -#}
{% macro privacy_tombstones_relation() -%}
    {%- set node = (graph.get('nodes') or {}).values() | selectattr('name', 'equalto', 'privacy_tombstones') | first
        if execute else none -%}
    {%- if node -%}
        {{ return(api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias, type='table')) }}
    {%- endif -%}
    {{ return(api.Relation.create(schema=target.schema, identifier='privacy_tombstones', type='table')) }}
{%- endmacro %}

{#- The columns of privacy_tombstones (on-run-start creates the table with them; the model selects them in this order). -#}
{% macro privacy_tombstone_columns() -%}
    {{ return('tombstone ' ~ dbt.type_string() ~ ', identifier_type ' ~ dbt.type_string()
        ~ ', request_id ' ~ dbt.type_string() ~ ', erased_at ' ~ dbt.type_timestamp()) }}
{%- endmacro %}

{#-
    on-run-start: the staging views name privacy_tombstones, so it must exist before they are created,
    also on the first build of a new warehouse (the model then finds it and appends to it).
-#}
{% macro create_privacy_tombstones() %}
    {%- set relation = cdp.privacy_tombstones_relation() -%}
    {%- if not cdp.relation_exists(relation) -%}
        {%- do cdp.run_statements([
            'create schema if not exists ' ~ adapter.quote(relation.schema),
            cdp.create_table_if_missing(relation, cdp.privacy_tombstone_columns()),
        ]) -%}
        {#- tell dbt's relation cache, or the model would try to create the table again -#}
        {%- do adapter.cache_added(relation) -%}
    {%- endif -%}
{% endmacro %}

{#-
    `select * from <relation>` without the records that carry a tombstoned identifier.
    `identifiers` maps each identifier column to its type: {'email': 'email', 'phone': 'phone'};
    a type given as an expression (for tables holding a type column) starts with no quote:
    {'identifier_value': 'identifier_type'} hashes identifier_value under the row's identifier_type.

    A returning record that shares only a secondary identifier with an erased person (their old
    phone or loyalty card beside a new email) is dropped too: identity resolution would have linked
    it to the erased profile through that identifier, so by the project's own rule it is part of
    that person. A shared identifier (a family phone the guard held back) is never tombstoned by
    a profile's erasure, so it keeps nobody else out; a request naming one directly blocks every
    record carrying it, since nobody can tell whose it is.
-#}
{% macro without_erased(relation, identifiers) -%}
    {#- a unit test gives its model's inputs; nobody is erased there -#}
    {%- set tombstones = '(select cast(null as ' ~ dbt.type_string() ~ ') as tombstone where 1 = 0)'
        if model.resource_type == 'unit_test' else cdp.privacy_tombstones_relation() -%}
    select *
    from {{ relation }}
    {%- for column, identifier_type in identifiers.items() %}
    {{ 'where' if loop.first else 'and' }} (
        {{ column }} is null
        or {{ cdp.tombstone(("'" ~ identifier_type ~ "'") if identifier_type in identifier_types() else identifier_type, column) }}
        not in (select erased.tombstone from {{ tombstones }} as erased)
    )
    {%- endfor %}
{%- endmacro %}

{#- The identifier types the identity graph knows. -#}
{% macro identifier_types() -%}
    {{ return(['email', 'phone', 'customer_id', 'loyalty_card_id', 'anonymous_id']) }}
{%- endmacro %}

{#-
    The profile ids erased so far (this build's included): `profile_id not in ({{ cdp.erased_profile_ids() }})`.
    Refs privacy_tombstones too, so the model runs after the tombstones (and the staging views it
    reads are already filtered by them).
-#}
{% macro erased_profile_ids() -%}
    {%- set tombstones = ref('privacy_tombstones') -%}
    select erasures.profile_id from {{ ref('privacy_erasures') }} as erasures where erasures.profile_id is not null
{%- endmacro %}

{#-
    The relation of a model (or of a source table, given its source name) found in the graph, not
    through ref()/source(): the scrub runs as privacy_tombstones' post-hook, and a ref there would
    make the tables it cleans upstream of the model that the tables themselves follow.
-#}
{% macro node_relation(name, source_name=none) -%}
    {%- set nodes = graph.sources.values() | selectattr('source_name', 'equalto', source_name)
        if source_name else graph.nodes.values() | selectattr('resource_type', 'equalto', 'model') -%}
    {%- set node = nodes | selectattr('name', 'equalto', name) | first -%}
    {%- if not node -%}
        {{ exceptions.raise_compiler_error('No ' ~ (source_name ~ ' source table ' if source_name else 'model ') ~ name ~ ' in this project') }}
    {%- endif -%}
    {{ return(api.Relation.create(database=node.database, schema=node.schema,
        identifier=node.identifier if source_name else node.alias, type='table')) }}
{%- endmacro %}

{#- Whether `relation` exists in the warehouse now. -#}
{% macro relation_exists(relation) -%}
    {{ return(adapter.get_relation(database=relation.database, schema=relation.schema, identifier=relation.identifier) is not none) }}
{%- endmacro %}

{#-
    Delete the rows of `relation` matching `condition`, on every engine: DELETE where the table format
    has it, else (Spark on parquet) rewrite the table without them through a work table.
-#}
{% macro delete_rows_statements(relation, condition) -%}
    {%- if target.type == 'spark' and cdp.table_format() not in ['delta', 'iceberg', 'hudi'] -%}
        {%- set work = api.Relation.create(schema=relation.schema, identifier=relation.identifier ~ '__erasure_work', type='table') -%}
        {{ return(cdp.overwrite_through_work_table(relation, work,
            'select * from ' ~ relation ~ ' as scrubbed where not (' ~ condition ~ ')')) }}
    {%- endif -%}
    {{ return(['delete from ' ~ relation ~ ' where ' ~ condition]) }}
{%- endmacro %}

{#-
    Post-hook of privacy_tombstones. When this build erased someone, remove them from the tables
    already written before the erasure was known, or kept across builds:
      identity building blocks (int_identity__*, identity_guard_decisions) — rebuilt without them
        next build anyway, but no table may hold them after this one; the event records are
        incremental: theirs go for good, as their events go from staging;
      profile_id_registry, profile_merges — incremental, they keep rows from earlier builds;
      the segment registry (members, history) and the manual lists (members, audit log);
      the staging tables of append-only events (rows carrying a tombstoned identifier);
      a table of event candidates a failed build left behind (dropped).
    Guard decisions about a shared identifier (a family phone) stay: the value is not the erased
    person's alone, and no tombstone names it.

    The values to delete are found by hashing each distinct identifier of this build's graph once
    (int_identity__identifiers holds every value the identity tables and the staged events carry)
    against this build's new tombstones; the tables then delete by value. Hashing every row of every
    table instead cost ~46M SHA-256s at 1M people (the staged web events alone 34M), in every build
    that erases someone. Earlier tombstones need no scrub: their rows went in their own build, and
    staging keeps them out since. The id registry, which keeps values from earlier builds, is still
    matched by hash.
-#}
{% macro scrub_erased_profiles() %}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set erased_at = "cast('" ~ run_started_at.strftime('%Y-%m-%d %H:%M:%S') ~ "' as " ~ dbt.type_timestamp() ~ ")" -%}
    {%- set erasures = cdp.node_relation('privacy_erasures') -%}
    {%- set new = run_query('select count(*) from ' ~ this ~ ' where erased_at = ' ~ erased_at) -%}
    {%- if new.rows[0][0] == 0 -%}
        {{ return('') }}
    {%- endif -%}
    {%- set profiles = 'select profile_id from ' ~ erasures ~ ' where profile_id is not null' -%}
    {%- set tombstones = 'select tombstone from ' ~ this -%}
    {%- set assignments = cdp.node_relation('int_identity__profile_assignments') -%}
    {%- set nodes = 'select node_id from ' ~ assignments ~ ' where profile_id in (' ~ profiles ~ ')' -%}
    {%- set components = 'select component_id from ' ~ assignments ~ ' where profile_id in (' ~ profiles ~ ')' -%}
    {%- set records = 'select source, record_id from ' ~ cdp.node_relation('int_identity__record_profiles')
        ~ ' where component_id in (' ~ components ~ ')' -%}
    {%- set by_record = "source || ':' || record_id in (select source || ':' || record_id from (" ~ records ~ ") as erased_records)" -%}
    {%- set by_hash = cdp.tombstone('identifier_type', 'identifier_value') ~ ' in (' ~ tombstones ~ ')' -%}
    {%- set identifiers = cdp.node_relation('int_identity__identifiers') -%}
    {%- set erased_values = api.Relation.create(database=identifiers.database, schema=identifiers.schema,
        identifier='int_privacy__erased_values', type='table') -%}
    {%- set by_value = "identifier_type || ':' || identifier_value in (select identifier_type || ':' || identifier_value from "
        ~ erased_values ~ ')' -%}
    {%- set statements = [
        'drop table if exists ' ~ erased_values,
        cdp.create_table_as_select(erased_values, 'select distinct identifier_type, identifier_value from ' ~ identifiers
            ~ ' where ' ~ cdp.tombstone('identifier_type', 'identifier_value') ~ ' in (select tombstone from ' ~ this
            ~ ' where erased_at = ' ~ erased_at ~ ')'),
    ] -%}
    {%- set scrubs = [
        (cdp.node_relation('int_identity__event_records'), cdp.carries_erased_value(cdp.event_record_identifier_types(), erased_values)),
        (cdp.node_relation('int_identity__person_records'), by_record ~ ' or ' ~ cdp.carries_erased_value(
            {'email': 'email', 'phone': 'phone', 'loyalty_card_id': 'loyalty_card_id', 'customer_id': 'customer_id'}, erased_values)),
        (cdp.node_relation('int_identity__record_identifiers'), by_record ~ ' or ' ~ by_value),
        (cdp.node_relation('int_identity__record_nodes'), by_record ~ ' or node_id in (' ~ nodes ~ ')'),
        (cdp.node_relation('int_identity__strong_groups'), 'node_id in (' ~ nodes ~ ')'),
        (cdp.node_relation('identity_guard_decisions'), by_value),
        (cdp.node_relation('int_identity__identifiers'), 'node_id in (' ~ nodes ~ ') or ' ~ by_value),
        (cdp.node_relation('int_identity__record_profiles'), 'component_id in (' ~ components ~ ')'),
        (cdp.node_relation('int_identity__components'), 'component_id in (' ~ components ~ ')'),
        (cdp.node_relation('int_identity__profile_assignments'), 'profile_id in (' ~ profiles ~ ')'),
    ] -%}
    {%- set kept = [
        (cdp.node_relation('profile_id_registry'), 'profile_id in (' ~ profiles ~ ') or ' ~ by_hash),
        (cdp.node_relation('profile_merges'), 'merged_profile_id in (' ~ profiles ~ ') or surviving_profile_id in (' ~ profiles ~ ')'),
        (cdp.registry_table('members'), 'profile_id in (' ~ profiles ~ ')'),
        (cdp.registry_table('history'), 'profile_id in (' ~ profiles ~ ')'),
    ] -%}
    {%- do kept.extend(cdp.staged_rows_of_erased(erased_values)) -%}
    {%- for table_name in ['members', 'audit_log'] -%}
        {%- do kept.append((cdp.node_relation(table_name, 'manual_segments'), 'profile_id in (' ~ profiles ~ ')')) -%}
    {%- endfor -%}
    {%- for relation, condition in scrubs + kept -%}
        {%- if cdp.relation_exists(relation) -%}
            {%- do statements.extend(cdp.delete_rows_statements(relation, condition)) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- do statements.append('drop table if exists ' ~ erased_values) -%}
    {#- the event candidates a failed build left (macros/incremental/affected_profiles.sql): stale,
        never read again, and they may hold the erased person's events -#}
    {%- do statements.append('drop table if exists ' ~ cdp.kept_event_candidates_relation()) -%}
    {%- do cdp.run_statements(statements) -%}
    {{ return('') }}
{% endmacro %}


{#- The segment registry's table `kind` as a relation (segments/segment_registry.sql names it): in the
    target's database where the engine has one (DuckDB's catalog, Postgres); Spark has none. -#}
{% macro registry_table(kind) %}
    {{ return(api.Relation.create(
        database=(target.database if target.database is defined else none),
        schema=target.schema,
        identifier='segment_registry_' ~ kind,
        type='table',
    )) }}
{% endmacro %}
