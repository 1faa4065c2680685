{#-
    int_identity__event_records rolls the append-only staged events (web, email) up into identity
    records: one row per distinct combination of a source's identifiers. Grouping every staged event
    each build cost ~5 s at 1M people (11.3M web events); a rebuild now groups only the events staged
    since the newest one it rolled up (its watermark, the newest staged_at it holds for that source)
    and merges them into the records it holds: the earliest event_id and occurred_at, the latest
    occurred_at. Rolling an event up twice changes nothing, so a watermark that is too old costs time,
    never a wrong row.

    Rows leave a staging table only when an erasure deletes the events carrying an erased
    identifier; privacy_tombstones' post-hook deletes the records carrying one too (a record's events
    all carry the same identifiers, so a record loses all of its events or none). A staging table
    rebuilt (--full-refresh of the staging model alone) no longer holds a row with the watermark's
    staged_at: its records are then rolled up again from every staged row, replacing those held.
-#}

{#- [(source, staging model)] of the rolled-up events; each model's identifiers are its meta's erased_by. -#}
{%- macro event_record_sources() -%}
    {{ return([('web', 'stg_web__events'), ('email', 'stg_email__events')]) }}
{%- endmacro -%}

{#- The identifier columns of the event records, {column: identifier type}: every source's (a source without one holds NULL). -#}
{%- macro event_record_identifier_types() -%}
    {%- set types = {} -%}
    {%- for source, staged in cdp.event_record_sources() -%}
        {%- do types.update(cdp.staged_identifier_types(staged)) -%}
    {%- endfor -%}
    {{ return(types) }}
{%- endmacro -%}

{#- The identifier columns of an append-only staging model, {column: identifier type}, from its config (no ref). -#}
{%- macro staged_identifier_types(model_name) -%}
    {%- if not execute -%}
        {{ return({'-': '-'}) }}  {#- parsing: no graph yet, and the SQL is not run -#}
    {%- endif -%}
    {%- set node = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
        | selectattr('name', 'equalto', model_name) | first -%}
    {{ return(node.config.meta.erased_by) }}
{%- endmacro -%}

{#-
    The newest staged_at int_identity__event_records rolled up from `staged` (a timestamp literal), or
    none when every staged row is to be rolled up: a full build, no record of that source yet, or a
    staging table that no longer holds a row staged then (rebuilt since; forget_restaged_event_records
    deletes that source's records first). Read when the model compiles and when its pre-hook runs,
    before either changes anything, so both see the same answer.
-#}
{%- macro event_records_watermark(source, staged) -%}
    {%- if not cdp.is_updating() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set newest = run_query("select max(staged_at) from " ~ this ~ " where source = '" ~ source ~ "'").rows[0][0] -%}
    {%- if newest is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set text = newest.strftime('%Y-%m-%d %H:%M:%S.%f') if newest.strftime is defined else newest | string -%}
    {%- set watermark = "cast('" ~ text ~ "' as " ~ dbt.type_timestamp() ~ ")" -%}
    {%- set still_staged = run_query('select count(*) from (select 1 from ' ~ cdp.node_relation(staged)
        ~ ' as staged where staged.staged_at = ' ~ watermark ~ ' limit 1) as found').rows[0][0] -%}
    {{ return(watermark if still_staged > 0 else none) }}
{%- endmacro -%}

{#- Pre-hook of int_identity__event_records: when a source's events are all rolled up again, its records go first. -#}
{%- macro forget_restaged_event_records() -%}
    {%- if not execute or not cdp.is_updating() -%}
        {{ return('') }}
    {%- endif -%}
    {%- set sources = [] -%}
    {%- for source, staged in cdp.event_record_sources() if cdp.event_records_watermark(source, staged) is none -%}
        {%- do sources.append("'" ~ source ~ "'") -%}
    {%- endfor -%}
    {%- if sources -%}
        delete from {{ this }} where source in ({{ sources | join(', ') }})
    {%- endif -%}
{%- endmacro -%}

{#-
    A text naming a combination of nullable identifier `columns`, unique to it and never null (the
    incremental key; NULL never equals NULL): each value prefixed by its length, '-' for none.
-#}
{%- macro combination_key(columns) -%}
    {%- set parts = [] -%}
    {%- for column in columns -%}
        {%- do parts.append("coalesce(cast(length(" ~ column ~ ") as " ~ dbt.type_string() ~ ") || ':' || " ~ column ~ ", '-')") -%}
    {%- endfor -%}
    {{ return(parts | join(" || '|' || ")) }}
{%- endmacro -%}

{#- The earlier (`later`: the later) of two nullable values, NULL only when both are. -#}
{%- macro earlier_of(a, b, later=false) -%}
    case when {{ b }} is null or {{ a }} {{ '>' if later else '<' }} {{ b }} then {{ a }} else {{ b }} end
{%- endmacro -%}
