{#-
    Stable profile ids. Each component (person) gets:
      - the id it had last build, read from profile_id_registry through its identifiers;
      - when its identifiers carried several ids (new data merged profiles), the id of the
        oldest of them (earliest first seen) — the others are recorded in profile_merges;
      - when a previous profile split, the part with most identifiers keeps the id and the
        others get a new one derived from it;
      - otherwise a new id: a hash of the component's earliest source record (its key, never
        personal data), so rebuilding the same data from scratch gives the same ids.

    The registry is read with adapter.get_relation, not ref(): it is written *from* this
    model (incremental), and a ref would be a cycle. On the first build it does not exist.
    It is public and this model intermediate, so they live in different schemas: the
    registry's node in the graph says where it is.
-#}
with

components as (
    select * from {{ ref('int_identity__components') }}
),

identifiers as (
    select * from {{ ref('int_identity__identifiers') }}
),

record_profiles as (
    select * from {{ ref('int_identity__record_profiles') }}
),

-- noqa: disable=LT02
{%- set registry = none %}
{%- if execute %}
    {%- set registry_node = graph.nodes.values() | selectattr('name', 'equalto', 'profile_id_registry') | first %}
    {%- set registry = adapter.get_relation(
        database=registry_node.database,
        schema=registry_node.schema,
        identifier=registry_node.alias,
    ) %}
{%- endif %}
-- noqa: enable=LT02

previous as (
    {%- if registry is not none and execute %}
    select
        identifier_type,
        identifier_value,
        profile_id,
        profile_first_seen_at
    from {{ registry }}
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as identifier_type,
        cast(null as {{ dbt.type_string() }}) as identifier_value,
        cast(null as {{ dbt.type_string() }}) as profile_id,
        cast(null as {{ dbt.type_timestamp() }}) as profile_first_seen_at
    where 1 = 0
    {%- endif %}
),

members as (
    select
        components.component_id,
        identifiers.node_id,
        identifiers.identifier_type,
        identifiers.identifier_value,
        identifiers.first_seen_at,
        previous.profile_id as previous_profile_id,
        previous.profile_first_seen_at as previous_profile_first_seen_at
    from components
    inner join identifiers on identifiers.node_id = components.node_id
    left join previous
        on previous.identifier_type = identifiers.identifier_type
        and previous.identifier_value = identifiers.identifier_value
),

anchors as (
    -- each component's earliest source record
    select
        component_id,
        source || ':' || record_id as anchor_record,
        min(first_seen_at) over (partition by component_id) as component_first_seen_at
    from (
        select
            record_profiles.*,
            row_number() over (
                partition by component_id
                order by first_seen_at, source, record_id
            ) as anchor_rank
        from record_profiles
    ) as ranked
    where anchor_rank = 1
),

claims as (
    select
        component_id,
        previous_profile_id as profile_id,
        min(previous_profile_first_seen_at) as profile_first_seen_at,
        count(*) as identifiers_claimed
    from members
    where previous_profile_id is not null
    group by component_id, previous_profile_id
),

preferred as (
    -- the oldest previous profile among a component's identifiers
    select *
    from (
        select
            claims.*,
            row_number() over (
                partition by component_id
                order by profile_first_seen_at, profile_id
            ) as claim_rank
        from claims
    ) as ranked
    where claim_rank = 1
),

contested as (
    -- after a split, several components may prefer the same id: the largest part keeps it
    select
        preferred.*,
        row_number() over (
            partition by profile_id
            order by identifiers_claimed desc, component_id asc
        ) = 1 as keeps_id
    from preferred
),

assigned as (
    select
        anchors.component_id,
        case
            when contested.keeps_id then contested.profile_id
            when contested.profile_id is not null
                then
                    'p_'
                    || substr({{ dbt.hash("'split:' || contested.profile_id || ':' || anchors.anchor_record") }}, 1, 24)
            else 'p_' || substr({{ dbt.hash("anchors.anchor_record") }}, 1, 24)
        end as profile_id,
        case
            when contested.keeps_id
                then least(contested.profile_first_seen_at, anchors.component_first_seen_at)
            else anchors.component_first_seen_at
        end as profile_first_seen_at
    from anchors
    left join contested on contested.component_id = anchors.component_id
),

final as (
    select
        members.node_id,
        members.identifier_type,
        members.identifier_value,
        members.component_id,
        assigned.profile_id,
        members.previous_profile_id,
        assigned.profile_first_seen_at
    from members
    inner join assigned on assigned.component_id = members.component_id
)

select * from final
