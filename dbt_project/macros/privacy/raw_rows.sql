{#-
    The raw rows that still hold an erased person's identifier (`cdp privacy raw-report`,
    `cdp forget --purge-raw`): `dbt run-operation privacy_raw_rows --args '{purge: false}'`.

    The raw tables belong to the user's loaders, so a build never touches them: staging keeps those
    rows out (macro without_erased), and this macro says how many there are, per table — never a
    value. A staging view has one row per raw row, so a raw row missing from it is one an erasure
    keeps out. A staging table (web and email events, macros/incremental/append_only_staging.sql)
    also lacks the rows that arrived since the last build: there a raw row counts only when it is
    not staged and its identifiers, normalised as staging does, carry a tombstone. With purge: true
    it deletes them, matching each raw row to its staging row by the record's key exactly as
    staging computes it (so a row is deleted only when staging left it out). consent_events (no key) and deletion_requests (the request itself) are reported,
    never deleted. Spark on parquet cannot delete rows: the macro says so loudly and deletes nothing.
-#}
{% macro privacy_raw_rows(purge=false) %}
    {#- (source, raw table, staging model, raw key as staging computes it, staging key column) -#}
    {%- set keyed = [
        ('crm', 'crm_contacts', 'stg_crm__contacts', 'cast(contact_id as ' ~ dbt.type_string() ~ ')', 'contact_id'),
        ('shop', 'shop_customers', 'stg_shop__customers', cdp.normalise_id('customer_id', 'customer_id'), 'customer_id'),
        ('shop', 'shop_orders', 'stg_shop__orders', 'cast(order_id as ' ~ dbt.type_string() ~ ')', 'order_id'),
        ('web', 'web_events', 'stg_web__events', 'cast(event_id as ' ~ dbt.type_string() ~ ')', 'event_id'),
        ('email', 'email_events', 'stg_email__events', 'cast(event_id as ' ~ dbt.type_string() ~ ')', 'event_id'),
        ('pos', 'pos_transactions', 'stg_pos__transactions', 'cast(transaction_id as ' ~ dbt.type_string() ~ ')', 'transaction_id'),
        ('support', 'support_tickets', 'stg_support__tickets', 'cast(ticket_id as ' ~ dbt.type_string() ~ ')', 'ticket_id'),
        ('privacy', 'consent_events', 'stg_privacy__consent_events', none, none),
        ('privacy', 'deletion_requests', 'stg_privacy__deletion_requests', none, none),
    ] -%}
    {%- set cannot_delete = target.type == 'spark' and cdp.table_format() not in ['delta', 'iceberg', 'hudi'] -%}
    {%- set held = [] -%}
    {%- for source_name, table_name, staging_model, raw_key, staging_key in keyed -%}
        {%- set raw = source(source_name, table_name) -%}
        {%- set staging = cdp.node_relation(staging_model) -%}
        {%- set not_staged = raw_key ~ ' is not null and ' ~ raw_key ~ ' not in (select kept.' ~ staging_key
            ~ ' from ' ~ staging ~ ' as kept where kept.' ~ staging_key ~ ' is not null)' if raw_key is not none else none -%}
        {%- if staging_model in cdp.append_only_staging_tables() -%}
            {#- a staging table (macros/incremental/append_only_staging.sql): a raw row it lacks may be one the
                next build stages, so only those carrying a tombstone count -#}
            {%- set held_out = not_staged ~ ' and ' ~ cdp.raw_row_carries_tombstone(
                staging_model, 'select erased.tombstone from ' ~ cdp.privacy_tombstones_relation() ~ ' as erased') -%}
            {%- set counted = run_query('select count(*) from ' ~ raw ~ ' where ' ~ held_out) -%}
        {%- else -%}
            {%- set held_out = not_staged -%}
            {%- set counted = run_query(
                'select (select count(*) from ' ~ raw ~ ') - (select count(*) from ' ~ staging ~ ')') -%}
        {%- endif -%}
        {%- set rows = counted.rows[0][0] | int -%}
        {%- set outcome = 'kept' -%}
        {%- if rows > 0 and purge and raw_key is not none and not cannot_delete -%}
            {%- do cdp.run_statements(['delete from ' ~ raw ~ ' where ' ~ held_out]) -%}
            {#- run_query begins no transaction: DuckDB commits each statement, psycopg2 holds one open -#}
            {%- do run_query('commit') if target.type == 'postgres' -%}
            {%- set outcome = 'deleted' -%}
        {%- elif rows > 0 and purge -%}
            {%- set outcome = 'not deleted: ' ~ ('the request itself; your loader owns it' if table_name == 'deletion_requests'
                else 'no key to match on; delete them in your loader' if raw_key is none
                else 'Spark tables in ' ~ cdp.table_format() ~ ' cannot delete rows') -%}
        {%- endif -%}
        {%- do print('raw.' ~ table_name ~ ': ' ~ rows ~ ' row(s) hold an erased identifier' ~ (' — ' ~ outcome if rows > 0 else '')) -%}
        {%- if rows > 0 and outcome != 'deleted' -%}
            {%- do held.append(table_name) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if purge and cannot_delete and held -%}
        {%- do print('WARNING: Spark tables in ' ~ cdp.table_format() ~ ' have no DELETE: NOTHING WAS DELETED from '
            ~ held | join(', ') ~ '. Reload those tables without the rows (the staging views already keep them out), '
            ~ 'or store raw tables as delta / iceberg (CDP_SPARK_FILE_FORMAT) and run `cdp forget --purge-raw` again.') -%}
    {%- endif -%}
{% endmacro %}
