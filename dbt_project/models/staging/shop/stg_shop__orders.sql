with

source as (
    select * from {{ source('shop', 'shop_orders') }}
),

renamed as (
    select
        -- ids
        cast(order_id as {{ dbt.type_string() }}) as order_id,
        {{ normalise_id('customer_id', 'customer_id') }} as customer_id,

        -- strings
        lower(trim(status)) as status,
        upper(trim(currency)) as currency,

        -- numbers
        cast(total_amount as decimal(12, 2)) as total_amount,

        -- booleans
        lower(trim(status)) = 'completed' as is_completed,

        -- timestamps
        cast(ordered_at as timestamp) as ordered_at

    from source
),

-- records carrying an erased person's identifier stay out (macros/privacy/erasure.sql)
final as (
    {{ cdp.without_erased('renamed', {'customer_id': 'customer_id'}) }}
)

select * from final
