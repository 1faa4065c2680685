with

source as (
    select * from {{ source('web', 'web_events') }}
),

renamed as (
    select
        -- ids
        cast(event_id as {{ dbt.type_string() }}) as event_id,
        {{ normalise_id('anonymous_id', 'anonymous_id') }} as anonymous_id,
        {{ normalise_id('customer_id', 'user_id') }} as customer_id,

        -- identifiers
        {{ normalise_email('email') }} as email,

        -- strings
        lower(trim(event_type)) as event_type,
        properties,
        lower(trim({{ json_text('properties', 'query') }})) as search_query,
        {{ json_text('properties', 'product_id') }} as product_id,
        lower(trim({{ json_text('properties', 'category') }})) as product_category,
        {{ json_text('properties', 'order_id') }} as order_id,

        -- timestamps
        cast(occurred_at as timestamp) as occurred_at

    from source
),

-- records carrying an erased person's identifier stay out (macros/privacy/erasure.sql)
final as (
    {{ cdp.without_erased(
        'renamed',
        {'anonymous_id': 'anonymous_id', 'customer_id': 'customer_id', 'email': 'email'}
    ) }}
)

select * from final
