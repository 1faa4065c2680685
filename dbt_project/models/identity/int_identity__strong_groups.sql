{#-
    Phase 1 of resolution: groups of records joined by strong identifiers only (email,
    customer id). The guard then asks of each weak identifier how many of these groups
    it would join. An email shared by more customer ids than
    var('identity_max_people_per_identifier').email is left out here too.
-#}
{{ config(post_hook="{{ drop_component_work_tables('int_identity__strong') }}") }}

{%- set record_nodes = ref('int_identity__record_nodes') -%}
{%- set max_customers_per_email = var('identity_max_people_per_identifier')['email'] -%}
{%- set strong_nodes_sql -%}
    select record_nodes.*
    from {{ record_nodes }} as record_nodes
    where is_strong
        and node_id not in (
            select email_nodes.node_id
            from {{ record_nodes }} as email_nodes
            inner join {{ record_nodes }} as customer_nodes
                on customer_nodes.source = email_nodes.source
                and customer_nodes.record_id = email_nodes.record_id
                and customer_nodes.identifier_type = 'customer_id'
            where email_nodes.identifier_type = 'email'
            group by email_nodes.node_id
            having count(distinct customer_nodes.node_id) > {{ max_customers_per_email }}
        )
{%- endset -%}

{%- if execute -%}
    {%- set labels = connected_components(
        nodes_sql='select node_id from (' ~ strong_nodes_sql ~ ') as strong_nodes',
        edges_sql=record_star_edges(strong_nodes_sql),
        prefix='int_identity__strong',
    ) -%}
{%- else -%}
    {%- set labels = '(select 1 as node_id, 1 as parent)' -%}
{%- endif -%}

select
    node_id,
    parent as group_id
from {{ labels }} as labels
