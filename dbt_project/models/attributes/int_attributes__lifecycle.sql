{#-
    Lifecycle stage of every profile as of var('as_of'). The first rule that matches wins:

        1. prospect  never purchased (orders_count = 0)
        2. new       first purchase within the last lifecycle_new_days (30)
        3. lapsed    no purchase within the last lifecycle_lapsed_days (180)
        4. at_risk   no purchase within the last lifecycle_at_risk_days (90)
        5. loyal     at least lifecycle_loyal_min_orders (5) purchases
        6. active    everyone else: a returning customer who bought within lifecycle_at_risk_days

    "Within the last N days" means after as_of - N days, the same half-open window as every
    other attribute: (as_of - N days, as_of]. So a loyal customer who stops buying becomes
    at_risk, then lapsed; a new customer is new for N days whatever they do.
-#}
{%- set as_of = "cast('" ~ var('as_of') ~ "' as timestamp)" -%}
{%- set new_days = var('lifecycle_new_days', 30) | int -%}
{%- set at_risk_days = var('lifecycle_at_risk_days', 90) | int -%}
{%- set lapsed_days = var('lifecycle_lapsed_days', 180) | int -%}
{%- set loyal_min_orders = var('lifecycle_loyal_min_orders', 5) | int -%}
{%- if not (0 < new_days and 0 < at_risk_days < lapsed_days and 0 < loyal_min_orders) -%}
    {{ exceptions.raise_compiler_error(
        'lifecycle vars need 0 < lifecycle_at_risk_days < lifecycle_lapsed_days and positive '
        ~ 'lifecycle_new_days / lifecycle_loyal_min_orders; got new=' ~ new_days ~ ', at_risk=' ~ at_risk_days
        ~ ', lapsed=' ~ lapsed_days ~ ', loyal_min_orders=' ~ loyal_min_orders
    ) }}
{%- endif -%}

with

purchases as (
    select * from {{ ref('int_attributes__purchases') }}
),

final as (
    select
        profile_id,
        case
            when orders_count = 0 then 'prospect'
            when first_purchase_at > {{ dbt.dateadd('day', -1 * new_days, as_of) }} then 'new'
            when last_purchase_at <= {{ dbt.dateadd('day', -1 * lapsed_days, as_of) }} then 'lapsed'
            when last_purchase_at <= {{ dbt.dateadd('day', -1 * at_risk_days, as_of) }} then 'at_risk'
            when orders_count >= {{ loyal_min_orders }} then 'loyal'
            else 'active'
        end as lifecycle_stage
    from purchases
)

select * from final
