{#-
    One row per distinct identifier (identifier_type, identifier_value) in a relation of record
    identifiers: first_seen_at, last_seen_at, record_count, and source — the source of its
    earliest record (the alphabetically first source among records seen at that earliest instant;
    records with no first_seen_at come after the others, as the engine orders NULLs).

    Dispatched because DuckDB does it in one aggregate (arg_min over (first_seen_at, source)) where
    the portable form groups, ranks every row in a window and joins the two: on DuckDB that was a
    third of int_identity__identifiers' time.
-#}
{% macro identifier_summaries(record_identifiers) -%}
    {{ return(adapter.dispatch('identifier_summaries', 'cdp')(record_identifiers)) }}
{%- endmacro %}

{% macro default__identifier_summaries(record_identifiers) %}
    select
        summaries.identifier_type,
        summaries.identifier_value,
        summaries.first_seen_at,
        summaries.last_seen_at,
        summaries.record_count,
        first_sources.source
    from (
        select
            identifier_type,
            identifier_value,
            min(first_seen_at) as first_seen_at,
            max(last_seen_at) as last_seen_at,
            count(*) as record_count
        from {{ record_identifiers }}
        group by identifier_type, identifier_value
    ) as summaries
    inner join (
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
            from {{ record_identifiers }} as record_identifiers
        ) as ranked
        where seen_rank = 1
        group by identifier_type, identifier_value
    ) as first_sources
        on first_sources.identifier_type = summaries.identifier_type
        and first_sources.identifier_value = summaries.identifier_value
{% endmacro %}

{% macro duckdb__identifier_summaries(record_identifiers) %}
    select
        identifier_type,
        identifier_value,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at,
        count(*) as record_count,
        arg_min(source, row(first_seen_at, source)) as source
    from {{ record_identifiers }}
    group by identifier_type, identifier_value
{% endmacro %}
