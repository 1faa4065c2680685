{#-
    The product category a profile spends most on, from the line items of its completed
    online orders placed by var('as_of') (in-store sales carry no items). One row per
    profile with at least one such line.
    Ties: most revenue, then most items (quantity), then the category name alphabetically,
    so the answer is the same on every rebuild.
-#}
{%- set as_of = "cast('" ~ var('as_of') ~ "' as timestamp)" -%}

{{ cdp.per_profile_incremental() }}

with

profile_events as (
    select * from {{ ref('profile_events') }}
),

order_items as (
    select * from {{ ref('stg_shop__order_items') }}
),

completed_orders as (
    select
        profile_id,
        order_id
    from profile_events
    where source = 'shop'
        and status = 'completed'
        and occurred_at <= {{ as_of }}
        and {{ cdp.is_affected_profile('profile_id') }}
),

category_totals as (
    select
        completed_orders.profile_id,
        order_items.product_category,
        sum(order_items.line_amount) as revenue,
        sum(order_items.quantity) as items
    from completed_orders
    inner join order_items on order_items.order_id = completed_orders.order_id
    where order_items.product_category is not null
    group by
        completed_orders.profile_id,
        order_items.product_category
),

ranked as (
    select
        profile_id,
        product_category,
        row_number() over (
            partition by profile_id
            order by revenue desc, items desc, product_category asc
        ) as preference_rank
    from category_totals
),

final as (
    select
        profile_id,
        product_category as preferred_category
    from ranked
    where preference_rank = 1
)

select * from final
