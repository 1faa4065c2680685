{#-
    Phase 2's graph: each record's identifiers that the guard lets link (identity_guard_decisions:
    not shared by too many people); one row per (record, node). A record links all its nodes: the
    SQL fixpoint joins each to the record's smallest node (a star), the in-memory path joins each
    to a vertex standing for the record. int_identity__components reads this in SQL or in memory
    (components_in_sql/, components_in_memory/), so both paths run on the same graph.
-#}
{{ config(materialized='view') }}

with

record_nodes as (
    select * from {{ ref('int_identity__record_nodes') }}
),

guard_decisions as (
    select * from {{ ref('identity_guard_decisions') }}
),

shared_nodes as (
    select node_id
    from guard_decisions
    where is_shared
),

linkable_nodes as (
    select *
    from record_nodes
    where node_id not in (select node_id from shared_nodes)
),

final as (
    select
        source,
        record_id,
        record_number,
        node_id,
        identifier_type
    from linkable_nodes
)

select * from final
