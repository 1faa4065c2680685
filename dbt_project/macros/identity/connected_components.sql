{#-
    Connected components of an undirected graph, in SQL, to a fixpoint.

    `nodes_sql` selects an integer column `node_id` (isolated nodes included); `edges_sql`
    selects integer columns `node_a`, `node_b` (one row per edge, either direction). Both are
    SQL text, materialised first into work tables. The returned relation has one row per
    node: `node_id`, `parent` (the smallest node id in its component).

    Each pass does, for every node x with parent p(x) (initially x itself):
      1. hook:    p'(x) = min(p(x), p(y) for every edge x–y, and the smallest p(y) over edges
                  u–y whose p(u) = x)   -- a root adopts a smaller neighbouring tree;
      2. shortcut: p''(x) = p'(p'(x))    -- pointer jumping halves every path.
    Parents only decrease (p(x) <= x throughout, so p'(p'(x)) <= p'(x) <= p(x)), so the loop
    terminates; it stops when a pass changes no parent, at which point every edge joins two
    nodes with the same root (otherwise step 1 would still lower one of them). Because no
    parent can rise, a pass changed none exactly when the sum of the parents did not fall: one
    aggregate over the new labels, not a join of the old and new ones. Hooking roots plus pointer jumping is the Shiloach–Vishkin
    scheme: the number of passes grows with log(longest chain), not with its length.

    Runs as statements through run_query, one per call (dbt models cannot loop, and dbt-spark
    sends one statement at a time), in work tables named `<prefix>__*` in the model's schema;
    the passes taken are written to `<prefix>__passes`. Portable SQL: create table as / joins /
    group by / least; a rename that says where the table stays (cdp.rename_table).
    `max_passes` is a safety net that fails the build loudly — never a silent cut-off.
-#}
{% macro connected_components(nodes_sql, edges_sql, prefix, max_passes=64) %}
    {%- set schema = this.schema -%}
    {%- set work = adapter.quote(schema) ~ '.' ~ adapter.quote(prefix ~ '__labels') -%}
    {%- set next_work = adapter.quote(schema) ~ '.' ~ adapter.quote(prefix ~ '__labels_next') -%}
    {%- set passes_table = adapter.quote(schema) ~ '.' ~ adapter.quote(prefix ~ '__passes') -%}
    {%- set nodes = adapter.quote(schema) ~ '.' ~ adapter.quote(prefix ~ '__nodes') -%}
    {%- set edges = adapter.quote(schema) ~ '.' ~ adapter.quote(prefix ~ '__edges') -%}

    {%- do cdp.run_statements([
        'drop table if exists ' ~ nodes,
        cdp.create_table_as_select(nodes, 'select distinct node_id from (' ~ nodes_sql ~ ') as n'),
        'drop table if exists ' ~ edges,
        cdp.create_table_as_select(edges,
            'select distinct node_a, node_b from (' ~ edges_sql ~ ') as e where node_a <> node_b'),
        'drop table if exists ' ~ work,
        cdp.create_table_as_select(work, 'select node_id, node_id as parent from ' ~ nodes),
    ]) -%}

    {%- set ns = namespace(passes=0, changed=1, parent_sum=none) -%}
    {%- set ns.parent_sum = run_query('select sum(parent) from ' ~ work).columns[0].values()[0] | int -%}
    {%- for i in range(max_passes) if ns.changed > 0 -%}
        {%- set pass_sql -%}
            with

            labels as (
                select * from {{ work }}
            ),

            neighbour_parents as (
                -- the parent of each neighbour, seen from both ends of every edge
                select edges.node_a as node_id, labels.parent as candidate
                from {{ edges }} as edges
                inner join labels on labels.node_id = edges.node_b
                union all
                select edges.node_b as node_id, labels.parent as candidate
                from {{ edges }} as edges
                inner join labels on labels.node_id = edges.node_a
            ),

            root_hooks as (
                -- a node that is some node's parent adopts that node's smallest neighbour parent
                select labels.parent as node_id, neighbour_parents.candidate
                from neighbour_parents
                inner join labels on labels.node_id = neighbour_parents.node_id
                where neighbour_parents.candidate < labels.parent
            ),

            hooked as (
                select
                    labels.node_id,
                    least(labels.parent, coalesce(min(candidates.candidate), labels.parent)) as parent
                from labels
                left join (
                    select * from neighbour_parents
                    union all
                    select * from root_hooks
                ) as candidates
                    on candidates.node_id = labels.node_id
                group by labels.node_id, labels.parent
            ),

            jumped as (
                select
                    hooked.node_id,
                    grand.parent
                from hooked
                inner join hooked as grand on grand.node_id = hooked.parent
            )

            select * from jumped
        {%- endset -%}
        {%- do cdp.run_statements(['drop table if exists ' ~ next_work, cdp.create_table_as_select(next_work, pass_sql)]) -%}

        {%- set parent_sum = run_query('select sum(parent) from ' ~ next_work).columns[0].values()[0] | int -%}
        {%- set ns.changed = ns.parent_sum - parent_sum -%}
        {%- set ns.parent_sum = parent_sum -%}
        {%- set ns.passes = ns.passes + 1 -%}

        {%- do cdp.run_statements([
            'drop table ' ~ work,
            cdp.rename_table(next_work, schema, prefix ~ '__labels'),
        ]) -%}
    {%- endfor -%}

    {%- if ns.changed > 0 -%}
        {{ exceptions.raise_compiler_error(
            "connected_components(" ~ prefix ~ ") had not converged after " ~ max_passes
            ~ " passes; raise max_passes — a cut-off would silently split profiles."
        ) }}
    {%- endif -%}

    {%- do cdp.run_statements([
        'drop table if exists ' ~ passes_table,
        cdp.create_table_as_select(passes_table, 'select cast(' ~ ns.passes ~ ' as integer) as passes'),
    ]) -%}
    {{ log("connected_components(" ~ prefix ~ "): converged after " ~ ns.passes ~ " passes", info=true) }}
    {%- do cdp.run_statements(['drop table if exists ' ~ nodes, 'drop table if exists ' ~ edges]) -%}

    {{ return(work) }}
{% endmacro %}

{#- Work tables left by connected_components that the model no longer needs (use as a post-hook). -#}
{% macro drop_component_work_tables(prefix) %}
    drop table if exists {{ adapter.quote(this.schema) }}.{{ adapter.quote(prefix ~ '__labels') }}
{% endmacro %}

{#-
    Edges that say "these identifiers belong to one person because one record carries them
    all", from a record-node relation (record_number, node_id): each record's nodes joined to
    the record's smallest node (a star, not all pairs).
-#}
{% macro record_star_edges(record_nodes) %}
    select
        min(node_id) over (partition by record_number) as node_a,
        node_id as node_b
    from {{ record_nodes }}
{% endmacro %}

{#-
    The body of a portable component model: every node of the record-node relation
    `record_nodes` (record_number, node_id) with `label_column`, the smallest node id of its
    component, by the SQL fixpoint (work tables named after `prefix`; drop them with
    drop_component_work_tables in the model's post-hook).
-#}
{% macro record_components_in_sql(record_nodes, prefix, label_column) %}
    {%- if execute -%}
        {%- set labels = connected_components(
            nodes_sql='select node_id from ' ~ record_nodes,
            edges_sql=record_star_edges(record_nodes),
            prefix=prefix,
        ) -%}
    {%- else -%}
        {%- set labels = '(select 1 as node_id, 1 as parent)' -%}
    {%- endif %}
    select
        node_id,
        parent as {{ label_column }}
    from {{ labels }} as labels
{% endmacro %}
