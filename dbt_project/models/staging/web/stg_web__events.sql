{%- set identifiers = cdp.staged_identifiers('stg_web__events') %}
{%- set property = cdp.json_texts('properties', ['query', 'product_id', 'category', 'order_id']) %}
{{ cdp.append_only_staging('event_id', identifiers) }}

with

source as (
    select raw_rows.* from {{ source('web', 'web_events') }} as raw_rows
    {{ cdp.where_not_staged('event_id') }}
),

renamed as (
    select
        -- ids
        cast(event_id as {{ dbt.type_string() }}) as event_id,

        -- identifiers: anonymous_id, customer_id (raw user_id), email (macros/incremental/append_only_staging.sql)
        {{ cdp.staged_identifier_columns(identifiers) }},

        -- strings
        lower(trim(event_type)) as event_type,
        properties,
        lower(trim({{ property['query'] }})) as search_query,
        {{ property['product_id'] }} as product_id,
        lower(trim({{ property['category'] }})) as product_category,
        {{ property['order_id'] }} as order_id,

        -- timestamps
        cast(occurred_at as timestamp) as occurred_at,
        {{ cdp.staged_at() }} as staged_at

    from source
),

-- records carrying an erased person's identifier stay out (macros/privacy/erasure.sql)
final as (
    {{ cdp.without_erased('renamed', cdp.erased_by(identifiers)) }}
)

select * from final
