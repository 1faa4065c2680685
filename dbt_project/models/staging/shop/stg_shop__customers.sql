with

source as (
    select * from {{ source('shop', 'shop_customers') }}
),

located as (
    {{ with_country('source', 'source.country') }}
),

renamed as (
    select
        -- ids
        {{ normalise_id('customer_id', 'customer_id') }} as customer_id,

        -- identifiers
        {{ normalise_email('email') }} as email,
        {{ normalise_phone('phone', 'calling_code', 'trunk_prefix') }} as phone,

        -- person
        {{ clean_name('first_name') }} as first_name,
        {{ clean_name('last_name') }} as last_name,
        {{ clean_name('city') }} as city,
        country_code as country,
        nullif(upper(trim(postal_code)), '') as postal_code,

        -- timestamps
        cast(created_at as timestamp) as created_at,
        cast(coalesce(updated_at, created_at) as timestamp) as updated_at

    from located
),

-- records carrying an erased person's identifier stay out (macros/privacy/erasure.sql)
final as (
    {{ cdp.without_erased('renamed', {'customer_id': 'customer_id', 'email': 'email', 'phone': 'phone'}) }}
)

select * from final
