{#-
    One node per distinct identifier value, with a dense integer id (ordered by type and
    value, so unchanged data gets the same ids) and when/where it was seen (macro
    identifier_summaries: first and last seen, how many records, the earliest record's source).
    email and customer_id are "strong" identifiers: they name one person by themselves.
    phone, loyalty_card_id and anonymous_id are "weak": families share phones, households
    share devices; the over-merge guard (identity_shared_identifiers) vets them.
-#}
with

record_identifiers as (
    select * from {{ ref('int_identity__record_identifiers') }}
),

identifiers as (
    {{ cdp.identifier_summaries('record_identifiers') }}
),

final as (
    select
        cast(
            row_number() over (order by identifiers.identifier_type, identifiers.identifier_value) as bigint
        ) as node_id,
        identifiers.identifier_type,
        identifiers.identifier_value,
        identifiers.source,
        identifiers.identifier_type in ('email', 'customer_id') as is_strong,
        identifiers.record_count,
        identifiers.first_seen_at,
        identifiers.last_seen_at
    from identifiers
)

select * from final
