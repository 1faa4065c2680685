{#-
    One node per distinct identifier value, with a dense integer id (ordered by type and
    value, so unchanged data gets the same ids) and when/where it was seen.
    email and customer_id are "strong" identifiers: they name one person by themselves.
    phone, loyalty_card_id and anonymous_id are "weak": families share phones, households
    share devices; the over-merge guard (identity_shared_identifiers) vets them.
-#}
with

record_identifiers as (
    select * from {{ ref('int_identity__record_identifiers') }}
),

identifiers as (
    select
        identifier_type,
        identifier_value,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at,
        count(*) as record_count
    from record_identifiers
    group by identifier_type, identifier_value
),

first_sources as (
    select
        identifier_type,
        identifier_value,
        min(source) as source
    from (
        select
            record_identifiers.*,
            rank() over (
                partition by identifier_type, identifier_value
                order by first_seen_at
            ) as seen_rank
        from record_identifiers
    ) as ranked
    where seen_rank = 1
    group by identifier_type, identifier_value
),

final as (
    select
        cast(
            row_number() over (order by identifiers.identifier_type, identifiers.identifier_value) as bigint
        ) as node_id,
        identifiers.identifier_type,
        identifiers.identifier_value,
        first_sources.source,
        identifiers.identifier_type in ('email', 'customer_id') as is_strong,
        identifiers.record_count,
        identifiers.first_seen_at,
        identifiers.last_seen_at
    from identifiers
    inner join first_sources
        on first_sources.identifier_type = identifiers.identifier_type
        and first_sources.identifier_value = identifiers.identifier_value
)

select * from final
