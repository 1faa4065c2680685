{#-
    Phase 1's graph: each record's strong identifiers (email, customer id), without an email
    shared by more customer ids than var('identity_max_people_per_identifier').email; one row
    per (record, node). A record links all its nodes: the SQL fixpoint joins each to the
    record's smallest node (a star), the in-memory path joins each to a vertex standing for the
    record. int_identity__strong_groups reads this in SQL or in memory (components_in_sql/,
    components_in_memory/), so both paths run on the same graph.
-#}
{{ config(materialized='view') }}

with

record_nodes as (
    select * from {{ ref('int_identity__record_nodes') }}
),

crowded_emails as (
    select email_nodes.node_id
    from record_nodes as email_nodes
    inner join record_nodes as customer_nodes
        on customer_nodes.record_number = email_nodes.record_number
        and customer_nodes.identifier_type = 'customer_id'
    where email_nodes.identifier_type = 'email'
    group by email_nodes.node_id
    having count(distinct customer_nodes.node_id) > {{ var('identity_max_people_per_identifier')['email'] }}
),

strong_nodes as (
    select *
    from record_nodes
    where is_strong
        and node_id not in (select node_id from crowded_emails)
),

final as (
    select
        source,
        record_id,
        record_number,
        node_id,
        identifier_type
    from strong_nodes
)

select * from final
