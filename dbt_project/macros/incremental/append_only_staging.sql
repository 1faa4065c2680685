{#-
    Staging tables of the append-only sources with the most rows (web events, email events; POS
    transactions stay a view: their phone needs the country join). A staging view normalises every raw row each time a model reads it (the email
    regex and the blocklist over 11M web events at 1M people, read by identity and by the events
    twice); these tables normalise a raw row once, when it first arrives:

        {%- set identifiers = cdp.staged_identifiers('stg_email__events') %}
        {{ cdp.append_only_staging('event_id', identifiers) }}
        with source as (select raw_rows.* from {{ source(...) }} as raw_rows {{ cdp.where_not_staged('event_id') }}),
        renamed as (select ..., {{ cdp.staged_identifier_columns(identifiers) }}, ... from source),
        final as ({{ cdp.without_erased('renamed', cdp.erased_by(identifiers)) }})

    - A raw row is new when the table holds no row with its key; the key is unique in the source
      (a source test says so every build, so a duplicate arriving later still fails the build).
      Raw rows are never updated in place in these sources; one that is needs `--full-refresh`.
    - Erasure: new rows carrying a tombstoned identifier stay out (without_erased), and when a build
      erases someone, privacy_tombstones' post-hook deletes the rows already staged that carry one
      of their identifiers (scrub_erased_profiles, through the `erased_by` map set here).
    - `cdp privacy raw-report` / `cdp forget --purge-raw` (macros/privacy/raw_rows.sql) cannot take
      "a raw row missing from staging" as erased here: it may simply have arrived after the last
      build. They recompute the identifiers of the raw rows not staged yet with the expressions
      below (staged_identifiers, the one copy the model selects too) and count, or delete, only
      those carrying a tombstone.
    - Spark on parquet has no DELETE: there the model is rebuilt as a table every build.
-#}
{#-
    The identifiers of an append-only staging model as it normalises them from its raw row:
    {column: (identifier type, expression over the raw columns)}.
-#}
{%- macro staged_identifiers(model_name) -%}
    {%- set by_model = {
        'stg_web__events': {
            'anonymous_id': ('anonymous_id', cdp.normalise_id('anonymous_id', 'anonymous_id')),
            'customer_id': ('customer_id', cdp.normalise_id('customer_id', 'user_id')),
            'email': ('email', cdp.normalise_email('email')),
        },
        'stg_email__events': {
            'email': ('email', cdp.normalise_email('email')),
        },
    } -%}
    {{ return(by_model[model_name]) }}
{%- endmacro -%}

{#- The identifier columns of a staging model's select: `<expression> as <column>, ...`. -#}
{%- macro staged_identifier_columns(identifiers) -%}
    {%- for column, (identifier_type, expression) in identifiers.items() %}
        {{ expression }} as {{ column }}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro -%}

{#- {column: identifier type}, as without_erased takes it. -#}
{%- macro erased_by(identifiers) -%}
    {%- set types = {} -%}
    {%- for column, (identifier_type, expression) in identifiers.items() -%}
        {%- do types.update({column: identifier_type}) -%}
    {%- endfor -%}
    {{ return(types) }}
{%- endmacro -%}

{%- macro append_only_staging(key, identifiers) -%}
    {%- do config(
        materialized=cdp.keyed_incremental_materialization(),
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        meta={'append_only_staging': true, 'erased_by': cdp.erased_by(identifiers)},
    ) -%}
    -- incremental: normalises only the raw rows it does not hold yet (macros/incremental/append_only_staging.sql)
{%- endmacro -%}

{#-
    The staged_at column of an append-only staging model: when this build staged the row (the start
    of its dbt invocation), later than every row the table holds already even if this machine's clock
    is behind the last build's. profile_events records the newest staged_at it attributed, so that a
    rebuild finds the new events by this column instead of looking every event up in profile_events
    (macros/incremental/affected_profiles.sql, staged_event_candidates). Rows staged before the
    column existed hold NULL: the first build after it was added looked them all up.
-#}
{%- macro staged_at() -%}
    {%- set started = "cast('" ~ run_started_at.strftime('%Y-%m-%d %H:%M:%S.%f') ~ "' as " ~ dbt.type_timestamp() ~ ")" -%}
    {%- if cdp.is_updating() and cdp.has_staged_at(model.name) -%}
        greatest(
            {{ started }},
            coalesce((select max(staged.staged_at) from {{ this }} as staged), {{ started }}) + interval '1 microsecond'
        )
    {%- else -%}
        {{ started }}
    {%- endif -%}
{%- endmacro -%}

{#- Whether the append-only staging model `name` exists with its staged_at column (a table staged before it was added lacks it until its next build). -#}
{%- macro has_staged_at(name) -%}
    {%- set relation = cdp.node_relation(name) -%}
    {%- if not cdp.relation_exists(relation) -%}
        {{ return(false) }}
    {%- endif -%}
    {{ return('staged_at' in adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list) }}
{%- endmacro -%}

{#- The `where` that keeps the raw rows (`from <source> as raw_rows`) whose `key` the table does not hold yet (nothing on a full build). -#}
{%- macro where_not_staged(key) -%}
    {%- if cdp.is_updating() -%}
    where not exists (
        select 1 from {{ this }} as staged
        where staged.{{ key }} = cast(raw_rows.{{ key }} as {{ dbt.type_string() }})
    )
    {%- endif -%}
{%- endmacro -%}

{#-
    The append-only staging models (the ones calling append_only_staging, which marks them in their
    meta): [model name]. The mark names the intent: another model may declare `erased_by` in its
    meta for its own reasons, and taking it for a staging table would let the erasure scrub and the
    raw-rows report treat its rows as staged raw rows.
-#}
{%- macro append_only_staging_tables() -%}
    {%- set found = [] -%}
    {%- for node in graph.nodes.values() | selectattr('resource_type', 'equalto', 'model') | sort(attribute='name') -%}
        {%- if node.config.meta.get('append_only_staging') -%}
            {%- do found.append(node.name) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(found) }}
{%- endmacro -%}

{#- `(<expression> is not null and <its tombstone> in (<tombstones>)) or ...` over {expression: identifier type}. -#}
{%- macro carries_tombstone(types, tombstones) -%}
    {%- set carries = [] -%}
    {%- for expression, identifier_type in types.items() -%}
        {%- do carries.append('((' ~ expression ~ ') is not null and '
            ~ cdp.tombstone("'" ~ identifier_type ~ "'", '(' ~ expression ~ ')') ~ ' in (' ~ tombstones ~ '))') -%}
    {%- endfor -%}
    {{ return('(' ~ carries | join(' or ') ~ ')') }}
{%- endmacro -%}

{#-
    [(relation, condition)] deleting the staged rows that carry an erased identifier, for each append-only
    staging table; `erased_values` is a relation of (identifier_type, identifier_value) (scrub_erased_profiles).
-#}
{%- macro staged_rows_of_erased(erased_values) -%}
    {%- set found = [] -%}
    {%- for node in graph.nodes.values() if node.name in cdp.append_only_staging_tables() -%}
        {#- the columns from the model's meta: staged_identifiers would ref the blocklist from a post-hook -#}
        {%- do found.append((cdp.node_relation(node.name), cdp.carries_erased_value(node.config.meta.erased_by, erased_values))) -%}
    {%- endfor -%}
    {{ return(found) }}
{%- endmacro -%}

{#- The condition that a row carries one of `erased_values` (identifier_type, identifier_value) in its columns {column: identifier type}. -#}
{%- macro carries_erased_value(types, erased_values) -%}
    {%- set carries = [] -%}
    {%- for column, identifier_type in types.items() -%}
        {#- not null first: Spark keeps `not (condition)`, and a null must keep its row there too -#}
        {%- do carries.append('(' ~ column ~ ' is not null and ' ~ column ~ ' in (select identifier_value from '
            ~ erased_values ~ " where identifier_type = '" ~ identifier_type ~ "'))") -%}
    {%- endfor -%}
    {{ return('(' ~ carries | join(' or ') ~ ')') }}
{%- endmacro -%}

{#- Over the raw rows of an append-only staging model: the condition that the row carries a tombstoned identifier. -#}
{%- macro raw_row_carries_tombstone(model_name, tombstones) -%}
    {%- set types = {} -%}
    {%- for column, (identifier_type, expression) in cdp.staged_identifiers(model_name).items() -%}
        {%- do types.update({expression: identifier_type}) -%}
    {%- endfor -%}
    {{ return(cdp.carries_tombstone(types, tombstones)) }}
{%- endmacro -%}
