{#-
    The over-merge guard, visible: every identifier value that co-occurs with more than one
    person, how many, the configured maximum, and whether it was allowed to link records.
    "Why were these two records not merged?" — look their identifiers up here.

    People, for a weak identifier (phone, loyalty card, device), are the phase-1 groups of
    records joined by email/customer id that carry it; for an email, distinct customer ids.
-#}
with

record_nodes as (
    select * from {{ ref('int_identity__record_nodes') }}
),

strong_groups as (
    select * from {{ ref('int_identity__strong_groups') }}
),

identifiers as (
    select * from {{ ref('int_identity__identifiers') }}
),

record_groups as (
    -- the phase-1 group(s) each record belongs to through its strong identifiers
    select distinct
        record_nodes.record_number,
        strong_groups.group_id
    from record_nodes
    inner join strong_groups on strong_groups.node_id = record_nodes.node_id
),

weak_identifier_people as (
    select
        record_nodes.node_id,
        count(distinct record_groups.group_id) as people
    from record_nodes
    inner join record_groups on record_groups.record_number = record_nodes.record_number
    where not record_nodes.is_strong
    group by record_nodes.node_id
),

email_people as (
    select
        email_nodes.node_id,
        count(distinct customer_nodes.node_id) as people
    from record_nodes as email_nodes
    inner join record_nodes as customer_nodes
        on customer_nodes.record_number = email_nodes.record_number
        and customer_nodes.identifier_type = 'customer_id'
    where email_nodes.identifier_type = 'email'
    group by email_nodes.node_id
),

people as (
    select * from weak_identifier_people
    union all
    select * from email_people
),

thresholds as (
    {%- set limits = var('identity_max_people_per_identifier') %}
    {%- for identifier_type, limit in limits.items() %}
    select '{{ identifier_type }}' as identifier_type, {{ limit }} as max_people
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

final as (
    select
        identifiers.node_id,
        identifiers.identifier_type,
        identifiers.identifier_value,
        people.people,
        thresholds.max_people,
        people.people > thresholds.max_people as is_shared,
        case
            when people.people > thresholds.max_people then 'not linked: shared by too many people'
            else 'linked: within the limit'
        end as decision,
        identifiers.record_count,
        identifiers.first_seen_at,
        identifiers.last_seen_at
    from people
    inner join identifiers on identifiers.node_id = people.node_id
    inner join thresholds on thresholds.identifier_type = identifiers.identifier_type
    where people.people > 1
)

select * from final
