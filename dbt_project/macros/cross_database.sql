{#-
    Cross-database helpers dbt does not ship. Each has a portable default and, where an engine
    lacks the default or gives it another meaning, an `<engine>__` implementation beside it
    (DuckDB, Postgres, Spark; BigQuery where it was free). Regular expressions stay within what
    RE2 (DuckDB), Postgres AREs and Java (Spark) read alike: no POSIX classes such as
    `[[:space:]]`, which Java reads as the set of characters `:space` — and so corrupts names
    without an error. Spark also reads backslash escapes inside string literals: write `\\t`
    in a Jinja string to put `\t` in the SQL, which every engine reads as a tab.
-#}

{#- Replace every match of a regular expression. -#}
{% macro regexp_replace_all(expression, pattern, replacement) -%}
    {{ return(adapter.dispatch('regexp_replace_all', 'cdp')(expression, pattern, replacement)) }}
{%- endmacro %}

{% macro default__regexp_replace_all(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, '{{ pattern }}', '{{ replacement }}')
{%- endmacro %}

{% macro duckdb__regexp_replace_all(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, '{{ pattern }}', '{{ replacement }}', 'g')
{%- endmacro %}

{% macro postgres__regexp_replace_all(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, '{{ pattern }}', '{{ replacement }}', 'g')
{%- endmacro %}

{#- True when the whole value matches a regular expression. -#}
{% macro regexp_full_match(expression, pattern) -%}
    {{ return(adapter.dispatch('regexp_full_match', 'cdp')(expression, pattern)) }}
{%- endmacro %}

{% macro default__regexp_full_match(expression, pattern) -%}
    regexp_like({{ expression }}, '^(?:{{ pattern }})$')
{%- endmacro %}

{% macro duckdb__regexp_full_match(expression, pattern) -%}
    regexp_full_match({{ expression }}, '{{ pattern }}')
{%- endmacro %}

{% macro postgres__regexp_full_match(expression, pattern) -%}
    ({{ expression }} ~ '^(?:{{ pattern }})$')
{%- endmacro %}

{% macro bigquery__regexp_full_match(expression, pattern) -%}
    regexp_contains({{ expression }}, r'^(?:{{ pattern }})$')
{%- endmacro %}

{#-
    Upper-case the first letter of each word, lower-case the rest ("mARY-ann o'neil" -> "Mary-Ann
    O'Neil"). A word ends at a space, tab, line break, hyphen or apostrophe — and only there, on
    every engine: the built-in initcap differs (Postgres also breaks at "." and digits, Spark only at
    spaces: "Mary-ann O'neil"), so each engine splits on the same characters itself.
-#}
{% macro initcap(expression) -%}
    {{ return(adapter.dispatch('initcap', 'cdp')(expression)) }}
{%- endmacro %}

{% macro default__initcap(expression) -%}
    initcap({{ expression }})
{%- endmacro %}

{% macro duckdb__initcap(expression) -%}
    list_aggregate(
        list_transform(
            regexp_extract_all(lower({{ expression }}), '[^ \t\r\n''-]+|[ \t\r\n''-]+'),
            lambda w: upper(w[1]) || w[2:]
        ),
        'string_agg', ''
    )
{%- endmacro %}

{% macro postgres__initcap(expression) -%}
    (
        select string_agg(upper(left(words.word[1], 1)) || substr(words.word[1], 2), '' order by words.position)
        from regexp_matches(lower({{ expression }}), '[^ \t\r\n''-]+|[ \t\r\n''-]+', 'g')
            with ordinality as words (word, position)
    )
{%- endmacro %}

{% macro spark__initcap(expression) -%}
    {#- \u0027 is the apostrophe: Spark unescapes it in the literal, the regex sees a plain ' -#}
    array_join(
        transform(
            regexp_extract_all(lower({{ expression }}), '[^ \t\r\n\u0027-]+|[ \t\r\n\u0027-]+', 0),
            w -> concat(upper(substr(w, 1, 1)), substr(w, 2))
        ),
        ''
    )
{%- endmacro %}

{#- An 8-byte floating-point type (dbt.type_float() is 4-byte REAL on DuckDB). -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'cdp')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double precision
{%- endmacro %}

{% macro duckdb__type_double() -%}
    double
{%- endmacro %}

{% macro spark__type_double() -%}
    double
{%- endmacro %}

{% macro bigquery__type_double() -%}
    float64
{%- endmacro %}

{#- Text value of a top-level key in a JSON text column. -#}
{% macro json_text(expression, key) -%}
    {{ return(adapter.dispatch('json_text', 'cdp')(expression, key)) }}
{%- endmacro %}

{% macro default__json_text(expression, key) -%}
    json_extract_path_text({{ expression }}, '{{ key }}')
{%- endmacro %}

{% macro duckdb__json_text(expression, key) -%}
    json_extract_string({{ expression }}, '$.{{ key }}')
{%- endmacro %}

{% macro postgres__json_text(expression, key) -%}
    json_extract_path_text(cast({{ expression }} as json), '{{ key }}')
{%- endmacro %}

{% macro spark__json_text(expression, key) -%}
    get_json_object({{ expression }}, '$.{{ key }}')
{%- endmacro %}

{% macro bigquery__json_text(expression, key) -%}
    json_value({{ expression }}, '$.{{ key }}')
{%- endmacro %}

{#-
    Several keys of one JSON text column, as {key: expression}. DuckDB parses the document once for
    all of them (one multi-path json_extract_string, which its common-subexpression pass evaluates
    once per row): over the 11.3M web events at 1M people, four keys took 3.1 s instead of 5.3-6.2 s.
    Other engines extract each key with json_text.
-#}
{% macro json_texts(expression, keys) -%}
    {{ return(adapter.dispatch('json_texts', 'cdp')(expression, keys)) }}
{%- endmacro %}

{% macro default__json_texts(expression, keys) -%}
    {%- set found = {} -%}
    {%- for key in keys -%}
        {%- do found.update({key: cdp.json_text(expression, key)}) -%}
    {%- endfor -%}
    {{ return(found) }}
{%- endmacro %}

{% macro duckdb__json_texts(expression, keys) -%}
    {%- set paths = [] -%}
    {%- for key in keys -%}
        {%- do paths.append("'$." ~ key ~ "'") -%}
    {%- endfor -%}
    {%- set found = {} -%}
    {%- for key in keys -%}
        {%- do found.update({key: 'json_extract_string(' ~ expression ~ ', [' ~ paths | join(', ') ~ '])[' ~ loop.index ~ ']'}) -%}
    {%- endfor -%}
    {{ return(found) }}
{%- endmacro %}

{#-
    Money divided by a count, as decimal(18, 2) rounded half away from zero (271.215 -> 271.22).
    Postgres and Spark divide decimals exactly; DuckDB divides them as DOUBLE, where 271.215 is
    271.2149999… and rounds down, so DuckDB works in whole cents with integer division instead.
-#}
{% macro money_divided_by(numerator, denominator) -%}
    {{ return(adapter.dispatch('money_divided_by', 'cdp')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__money_divided_by(numerator, denominator) -%}
    cast({{ numerator }} / nullif({{ denominator }}, 0) as decimal(18, 2))
{%- endmacro %}

{% macro duckdb__money_divided_by(numerator, denominator) -%}
    cast(
        sign({{ numerator }})
        * ((2 * abs(cast(round({{ numerator }} * 100) as hugeint)) + abs({{ denominator }}))
            // (2 * abs(nullif({{ denominator }}, 0))))
        * sign({{ denominator }})
        * cast(0.01 as decimal(18, 2))
        as decimal(18, 2)
    )
{%- endmacro %}

{#-
    Run SQL statements one `run_query` at a time. dbt-spark (and other adapters) send one statement
    per call; DuckDB and Postgres accept several, but one at a time works everywhere.
-#}
{% macro run_statements(statements) %}
    {%- for statement in statements if statement | trim -%}
        {%- do run_query(statement) -%}
    {%- endfor -%}
{% endmacro %}

{#- `create table <relation> as <sql>`; on Spark as a parquet table (no Delta or Iceberg needed). -#}
{% macro create_table_as_select(relation, sql) -%}
    {{ return(adapter.dispatch('create_table_as_select', 'cdp')(relation, sql)) }}
{%- endmacro %}

{% macro default__create_table_as_select(relation, sql) -%}
    create table {{ relation }} as {{ sql }}
{%- endmacro %}

{% macro spark__create_table_as_select(relation, sql) -%}
    create table {{ relation }} using parquet as {{ sql }}
{%- endmacro %}

{#-
    A number as text with exactly `decimals` decimals ("123.40"; "62" for 0), rounded half away
    from zero, the same on every engine: through a decimal, because casting a DOUBLE to text gives
    each engine's own digits and Postgres has no round(double precision, integer).
-#}
{% macro number_text(expression, decimals) -%}
    {%- if decimals == 0 -%}
        cast(cast(round(cast({{ expression }} as decimal(18, 6)), 0) as {{ dbt.type_bigint() }}) as {{ dbt.type_string() }})
    {%- else -%}
        cast(
            cast(round(cast({{ expression }} as decimal(18, 6)), {{ decimals }}) as decimal(18, {{ decimals }}))
            as {{ dbt.type_string() }}
        )
    {%- endif -%}
{%- endmacro %}

{#- `create table if not exists <relation> (<columns>)`; on Spark in the table format (parquet unless set). -#}
{% macro create_table_if_missing(relation, columns) -%}
    {{ return(adapter.dispatch('create_table_if_missing', 'cdp')(relation, columns)) }}
{%- endmacro %}

{% macro default__create_table_if_missing(relation, columns) -%}
    create table if not exists {{ relation }} ({{ columns }})
{%- endmacro %}

{% macro spark__create_table_if_missing(relation, columns) -%}
    create table if not exists {{ relation }} ({{ columns }}) using {{ cdp.table_format() }}
{%- endmacro %}

{#-
    The Spark table format: CDP_SPARK_FILE_FORMAT, default parquet (what installs offline; no
    MERGE, DELETE or UPDATE). dbt_project.yml sets `+file_format` from the same variable.
-#}
{% macro table_format() -%}
    {{ return(env_var('CDP_SPARK_FILE_FORMAT', 'parquet')) }}
{%- endmacro %}

{#-
    Statements that replace every row of `relation` with `rows_sql` (which may read `relation`):
    into a work table first, since Spark cannot overwrite a table it is reading, then INSERT
    OVERWRITE. For engines without DELETE / UPDATE (Spark on parquet).
-#}
{% macro overwrite_through_work_table(relation, work_relation, rows_sql) -%}
    {{ return([
        'drop table if exists ' ~ work_relation,
        cdp.create_table_as_select(work_relation, rows_sql),
        'insert overwrite table ' ~ relation ~ ' select * from ' ~ work_relation,
        'drop table if exists ' ~ work_relation,
    ]) }}
{%- endmacro %}

{#- Rename a table within `schema`. Spark wants the new name qualified, or it moves the table to the current database. -#}
{% macro rename_table(relation, schema, new_identifier) -%}
    {{ return(adapter.dispatch('rename_table', 'cdp')(relation, schema, new_identifier)) }}
{%- endmacro %}

{% macro default__rename_table(relation, schema, new_identifier) -%}
    alter table {{ relation }} rename to {{ adapter.quote(new_identifier) }}
{%- endmacro %}

{% macro spark__rename_table(relation, schema, new_identifier) -%}
    alter table {{ relation }} rename to {{ adapter.quote(schema) }}.{{ adapter.quote(new_identifier) }}
{%- endmacro %}

{#-
    Column types as YAML spells them (contracts, manual_segments sources): `varchar` and
    `double precision`, which DuckDB and Postgres both read. Spark has neither (no unsized
    varchar; `double`): dbt casts through this override of its own `cast` for Spark, which is
    how a contract's data types reach Spark (`cast(null as <data_type>)`).
-#}
{% macro spark__cast(field, type) -%}
    cast({{ field }} as {{ cdp.spark_type(type) }})
{%- endmacro %}

{% macro spark_type(type) -%}
    {%- set spelled = type | trim | lower -%}
    {{ return({'varchar': 'string', 'text': 'string', 'double precision': 'double'}.get(spelled, type)) }}
{%- endmacro %}

{#- The set operator of a recursive CTE: `union` (adds only new rows), or `union all` where that is all there is (Spark). -#}
{% macro recursive_union() -%}
    {{ return(adapter.dispatch('recursive_union', 'cdp')()) }}
{%- endmacro %}

{% macro default__recursive_union() -%}
    union
{%- endmacro %}

{% macro spark__recursive_union() -%}
    union all
{%- endmacro %}
