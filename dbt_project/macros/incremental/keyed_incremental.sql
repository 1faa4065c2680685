{#-
    Incremental models keyed by `unique_key` whose rows outlive the sources (profile_id_registry,
    profile_merges): each build replaces the rows of the keys it computes and keeps every other
    row of the previous build. How, per engine:

      DuckDB, Postgres         incremental, delete+insert
      Spark on Delta/Iceberg   incremental, merge
      Spark on parquet         no MERGE, DELETE or UPDATE: `append` would duplicate every key on
                               the second run. The model is rebuilt in full as a table instead —
                               its new rows plus the previous build's rows whose key is not among
                               them — and the build says so with a warning on every run.

    In the model:

        {{ config(
            materialized=cdp.keyed_incremental_materialization(),
            incremental_strategy=cdp.keyed_incremental_strategy(),
            unique_key=[...],
            post_hook="{{ cdp.drop_previous_build_copy() }}",
        ) }}
        ...
        select * from final
        {{ cdp.previous_build_rows_not_replaced(['key_a', 'key_b']) }}
-#}

{%- macro rebuilds_keyed_incremental_models() -%}
    {{ return(target.type == 'spark' and cdp.table_format() not in ['delta', 'iceberg', 'hudi']) }}
{%- endmacro -%}

{%- macro keyed_incremental_materialization() -%}
    {{ return('table' if cdp.rebuilds_keyed_incremental_models() else 'incremental') }}
{%- endmacro -%}

{%- macro keyed_incremental_strategy() -%}
    {{ return('merge' if target.type == 'spark' else 'delete+insert') }}
{%- endmacro -%}

{#- Where the previous build's rows wait while the table is rebuilt (Spark on parquet). -#}
{%- macro previous_build_copy() -%}
    {{ return(api.Relation.create(schema=this.schema, identifier=this.identifier ~ '__previous', type='table')) }}
{%- endmacro -%}

{#-
    `union all` of the previous build's rows whose key the new rows do not hold (Spark on parquet;
    nothing elsewhere). Runs while the model compiles: warns, and copies the previous rows aside,
    since Spark cannot rebuild a table from itself. A copy left by a failed build is used as the
    previous rows when the table itself is gone, so a failure loses nothing.
-#}
{%- macro previous_build_rows_not_replaced(unique_key) -%}
    {%- if not execute or not cdp.rebuilds_keyed_incremental_models() or model.resource_type == 'unit_test' -%}
        {{ return('') }}
    {%- endif -%}
    {%- set copy = cdp.previous_build_copy() -%}
    {%- set existing = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier) -%}
    {%- set left_over = adapter.get_relation(database=copy.database, schema=copy.schema, identifier=copy.identifier) -%}
    {%- do exceptions.warn(
        "WARNING: " ~ this.identifier ~ ": Spark tables in " ~ cdp.table_format() ~ " have no MERGE, so this incremental model is "
        ~ "REBUILT IN FULL: its new rows plus the previous build's rows whose key is not among them (kept in "
        ~ copy.identifier ~ " until the build succeeds). Set CDP_SPARK_FILE_FORMAT=delta or iceberg where the "
        ~ "cluster has it, and dbt merges instead.") -%}
    {%- if should_full_refresh() or (existing is none and left_over is none) -%}
        {{ return('') }}
    {%- endif -%}
    {%- if existing is not none -%}
        {%- do cdp.run_statements([
            'drop table if exists ' ~ copy,
            cdp.create_table_as_select(copy, 'select * from ' ~ existing),
        ]) -%}
    {%- else -%}
        {{ log(this.identifier ~ ": the table is missing; its previous rows come from " ~ copy.identifier
            ~ ", left by a build that failed.", info=true) }}
    {%- endif -%}
    {%- set matches = [] -%}
    {%- for column in unique_key -%}
        {%- do matches.append('replaced.' ~ column ~ ' = previous.' ~ column) -%}
    {%- endfor -%}
    {{ return(
        'union all select previous.* from ' ~ copy ~ ' as previous where not exists (select 1 from final as replaced where '
        ~ matches | join(' and ') ~ ')'
    ) }}
{%- endmacro -%}

{#- Post-hook: drop the copy once the table is rebuilt (Spark on parquet; nothing elsewhere). -#}
{%- macro drop_previous_build_copy() -%}
    {%- if cdp.rebuilds_keyed_incremental_models() -%}
        drop table if exists {{ cdp.previous_build_copy() }}
    {%- endif -%}
{%- endmacro -%}
