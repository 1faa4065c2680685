with

source as (
    select * from {{ source('shop', 'shop_order_items') }}
),

renamed as (
    select
        -- ids
        cast(order_id as {{ dbt.type_string() }}) as order_id,
        cast(line_number as integer) as line_number,
        cast(product_id as {{ dbt.type_string() }}) as product_id,

        -- strings
        lower(trim(product_category)) as product_category,

        -- numbers
        cast(quantity as integer) as quantity,
        cast(unit_price as decimal(12, 2)) as unit_price,
        cast(quantity * unit_price as decimal(12, 2)) as line_amount

    from source
)

select * from renamed
