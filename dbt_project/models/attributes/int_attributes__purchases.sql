{#-
    Purchase facts per profile, one row for every profile (zeros / NULLs when it never bought),
    as of var('as_of'): events after that instant are ignored.

    A purchase is a completed online order or an in-store sale with a positive amount.
    Value is net: completed order totals plus every POS amount, returns (negative POS
    amounts) included; cancelled and refunded orders are worth 0. Amounts are summed as
    recorded, without currency conversion (the sample has one currency per person).

    purchase_frequency_per_month = orders_count / tenure in months, where tenure runs from
    the first purchase to as_of, in months of 30.4375 days (365.25 / 12), and counts as at
    least one month so a purchase made yesterday reads as 1 per month, not 30.
-#}
{%- set as_of = "cast('" ~ var('as_of') ~ "' as timestamp)" -%}

{{ cdp.per_profile_incremental() }}

with

profiles as (
    select * from {{ ref('profiles') }}
    where {{ cdp.is_affected_profile('profile_id') }}
),

profile_events as (
    select * from {{ ref('profile_events') }}
),

purchase_events as (
    select
        profile_id,
        source,
        amount,
        occurred_at,
        case
            when source = 'shop' then status = 'completed'
            else amount > 0
        end as is_purchase,
        case
            when source = 'shop' and status = 'completed' then amount
            when source = 'pos' then amount
            else 0
        end as net_amount
    from profile_events
    where source in ('shop', 'pos')
        and occurred_at <= {{ as_of }}
        and {{ cdp.is_affected_profile('profile_id') }}
),

per_profile as (
    select
        profile_id,
        sum(case when is_purchase and source = 'shop' then 1 else 0 end) as online_orders_count,
        sum(case when is_purchase and source = 'pos' then 1 else 0 end) as store_purchases_count,
        sum(net_amount) as lifetime_value,
        sum(case when is_purchase and source = 'shop' then amount else 0 end) as online_value,
        sum(case when is_purchase and source = 'pos' then amount else 0 end) as store_gross_value,
        min(case when is_purchase then occurred_at end) as first_purchase_at,
        max(case when is_purchase then occurred_at end) as last_purchase_at
    from purchase_events
    group by profile_id
),

with_tenure as (
    select
        *,
        online_orders_count + store_purchases_count as orders_count,
        -- in floating point on every engine (decimal division keeps engine-specific scales)
        cast(
            {{ dbt.datediff('first_purchase_at', as_of, 'second') }}
            as {{ type_double() }}
        ) / (86400 * 30.4375) as tenure_months,
        cast(
            {{ dbt.datediff('last_purchase_at', as_of, 'second') }}
            as {{ type_double() }}
        ) / 86400.0 as days_since_last_purchase_exact
    from per_profile
),

final as (
    select
        profiles.profile_id,
        case
            when coalesce(with_tenure.online_orders_count, 0) > 0 and coalesce(with_tenure.store_purchases_count, 0) > 0
                then 'omnichannel'
            when coalesce(with_tenure.online_orders_count, 0) > 0 then 'online'
            when coalesce(with_tenure.store_purchases_count, 0) > 0 then 'in_store'
        end as channel_mix,
        cast(coalesce(with_tenure.orders_count, 0) as integer) as orders_count,
        cast(coalesce(with_tenure.online_orders_count, 0) as integer) as online_orders_count,
        cast(coalesce(with_tenure.store_purchases_count, 0) as integer) as store_purchases_count,
        cast(coalesce(with_tenure.lifetime_value, 0) as decimal(18, 2)) as lifetime_value,
        cast(
            case
                when with_tenure.orders_count > 0
                    then {{ money_divided_by('with_tenure.lifetime_value', 'with_tenure.orders_count') }}
            end
            as decimal(18, 2)
        ) as average_order_value,
        cast(
            case
                when with_tenure.orders_count > 0
                    then with_tenure.orders_count
                        / case when with_tenure.tenure_months < 1 then 1 else with_tenure.tenure_months end
            end
            as decimal(12, 4)
        ) as purchase_frequency_per_month,
        cast(
            case
                when with_tenure.online_value + with_tenure.store_gross_value > 0
                    then with_tenure.online_value / (with_tenure.online_value + with_tenure.store_gross_value)
            end
            as decimal(5, 4)
        ) as online_share_of_value,
        cast(floor(with_tenure.days_since_last_purchase_exact) as integer) as days_since_last_purchase,
        with_tenure.first_purchase_at,
        with_tenure.last_purchase_at
    from profiles
    left join with_tenure on with_tenure.profile_id = profiles.profile_id
)

select * from final
