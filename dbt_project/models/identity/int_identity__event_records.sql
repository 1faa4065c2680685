{#-
    The identity records of the append-only events: one per distinct combination of a source's
    identifiers (web: anonymous_id, customer_id, email; email: email), keyed by its first event_id,
    with when its events happened. A page view with only an anonymous_id asserts nothing new, so
    its events share one record; an event without any identifier is no record.

    Incremental: a rebuild rolls up only the events staged since the last (macros/incremental/
    event_records.sql says how, and when it rolls everything up again). staged_at is the newest
    staged_at of the record's events.
-#}
{{
    config(
        materialized=cdp.keyed_incremental_materialization(),
        incremental_strategy=cdp.keyed_incremental_strategy(),
        unique_key=['source', 'record_key'],
        on_schema_change='fail',
        pre_hook="{{ cdp.forget_restaged_event_records() }}",
    )
}}

with

{%- set rolled_up = [] %}
{%- for source, staged in cdp.event_record_sources() %}
{%- set columns = cdp.staged_identifier_types(staged).keys() | list %}
{%- set watermark = cdp.event_records_watermark(source, staged) %}
{%- do rolled_up.append(source ~ '_records') %}

{{ source }}_records as (
    select
        '{{ source }}' as source,
        {{ cdp.combination_key(columns) }} as record_key,
        min(event_id) as record_id,
        {%- for column in cdp.event_record_identifier_types() %}
        {{ column if column in columns else 'cast(null as ' ~ dbt.type_string() ~ ')' }} as {{ column }},
        {%- endfor %}
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at,
        max(staged_at) as staged_at
    from {{ ref(staged) }}
    where coalesce({{ columns | join(', ') }}) is not null
        -- a rebuild: only the events staged after the newest rolled up
        and {{ 'staged_at > ' ~ watermark if watermark is not none else 'true' }}
    group by {{ columns | join(', ') }}
),
{%- endfor %}

rolled_up as (
    {%- for name in rolled_up %}
    select * from {{ name }}
    {{ 'union all' if not loop.last }}
    {%- endfor %}
),

final as (
    {%- if cdp.is_updating() %}
    -- merged with the record held (the staging table still holds its events: none of them is rolled up again)
    select
        rolled_up.source,
        rolled_up.record_key,
        {{ cdp.earlier_of('rolled_up.record_id', 'held.record_id') }} as record_id,
        rolled_up.anonymous_id,
        rolled_up.customer_id,
        rolled_up.email,
        {{ cdp.earlier_of('rolled_up.first_seen_at', 'held.first_seen_at') }} as first_seen_at,
        {{ cdp.earlier_of('rolled_up.last_seen_at', 'held.last_seen_at', later=true) }} as last_seen_at,
        {{ cdp.earlier_of('rolled_up.staged_at', 'held.staged_at', later=true) }} as staged_at
    from rolled_up
    left join {{ this }} as held
        on held.source = rolled_up.source
        and held.record_key = rolled_up.record_key
    {%- else %}
    select * from rolled_up
    {%- endif %}
)

select * from final
