{#-
    Behavioural features of every profile, as they stood at a cutoff instant.

    Only events strictly before the cutoff count, and only profiles first seen before it
    exist — so features at (as_of - 90 days) are what a model could have known then, and
    the 90 days after are a fair holdout (int_predictive__training_set). Features at as_of
    score today (int_predictive__scoring_set).

        {{ predictive_features(predictive_calibration_cutoff()) }}

    `cutoff` is a SQL timestamp expression. Returns a complete query (with its own CTEs),
    one row per profile; counts are 0 and recencies NULL where nothing happened.

    In a per-profile incremental model (cdp.per_profile_incremental) updated in place, only the
    profiles whose features may have moved are computed: the affected ones (their events or
    identifiers changed), and those the table holds no row for with today's tenure (new profiles,
    and a first_seen_at moved by a source record that brought no event and no new identifier).

    A purchase is a completed shop order or a POS sale (amount > 0). Net value is completed
    shop order totals plus POS amounts (returns at the till are negative); cancelled and
    refunded orders count nothing. An order's status is its current status: an order placed
    before the cutoff and refunded after it counts as refunded (the sources carry no refund
    date), the one look past the cutoff the data forces on us.
-#}
{% macro predictive_features(cutoff, profiles_relation=none, events_relation=none) %}
{%- set profiles_relation = profiles_relation or ref('profiles') -%}
{%- set events_relation = events_relation or ref('profile_events') -%}
with

profiles as (
    select * from {{ profiles_relation }}
),

profile_events as (
    select * from {{ events_relation }}
),

known_profiles as (
    select
        profile_id,
        first_seen_at
    from profiles
    where first_seen_at < {{ cutoff }}
        and {{ predictive_features_recomputed('profiles', cutoff) }}
),

events_before_cutoff as (
    select
        profile_id,
        source,
        event_type,
        status,
        {{ predictive_is_purchase() }} as is_purchase,
        {{ predictive_net_value() }} as net_value,
        occurred_at,
        max(case when {{ predictive_is_purchase() }} then occurred_at end)
            over (partition by profile_id) as last_purchase_at
    from profile_events
    where occurred_at < {{ cutoff }}
        {%- if cdp.is_updating() %}
        and profile_id in (select known_profiles.profile_id from known_profiles)
        {%- endif %}
),

activity as (
    select
        profile_id,
        min(case when is_purchase then occurred_at end) as first_purchase_at,
        max(case when is_purchase then occurred_at end) as last_purchase_at,
        max(occurred_at) as last_event_at,

        count(case when is_purchase then 1 end) as purchases,
        count(case when is_purchase and source = 'pos' then 1 end) as store_purchases,
        count(case when is_purchase and {{ predictive_within(90, cutoff) }} then 1 end) as purchases_90d,
        count(case when is_purchase and {{ predictive_within(180, cutoff) }} then 1 end) as purchases_180d,
        count(case when is_purchase and {{ predictive_within(365, cutoff) }} then 1 end) as purchases_365d,
        count(
            case
                when source = 'shop' and status in ('cancelled', 'refunded') then 1
                when source = 'pos' and status = 'refunded' then 1
            end
        ) as returned_or_cancelled_orders,

        sum(net_value) as net_value,
        sum(case when {{ predictive_within(90, cutoff) }} then net_value end) as net_value_90d,
        sum(case when {{ predictive_within(365, cutoff) }} then net_value end) as net_value_365d,
        sum(case when is_purchase then net_value end) as gross_purchase_value,

        count(case when source = 'email' and event_type = 'sent' and {{ predictive_within(90, cutoff) }} then 1 end)
            as emails_sent_90d,
        count(case when source = 'email' and event_type = 'opened' and {{ predictive_within(90, cutoff) }} then 1 end)
            as email_opens_90d,
        count(case when source = 'email' and event_type = 'clicked' and {{ predictive_within(90, cutoff) }} then 1 end)
            as email_clicks_90d,
        count(case when source = 'email' and event_type in ('unsubscribed', 'complained') then 1 end)
            as email_opt_outs,

        count(case when source = 'web' and event_type <> 'identify' and {{ predictive_within(30, cutoff) }} then 1 end)
            as web_events_30d,
        count(case when source = 'web' and event_type <> 'identify' and {{ predictive_within(90, cutoff) }} then 1 end)
            as web_events_90d,
        count(case when source = 'web' and event_type = 'product_searched' and {{ predictive_within(90, cutoff) }} then 1 end)
            as searches_90d,
        count(
            case
                when source = 'web'
                    and event_type = 'product_added_to_cart'
                    and {{ predictive_within(30, cutoff) }}
                    and (last_purchase_at is null or occurred_at > last_purchase_at)
                    then 1
            end
        ) as cart_adds_without_order_30d,

        count(case when source = 'support' and {{ predictive_within(365, cutoff) }} then 1 end)
            as support_tickets_365d
    from events_before_cutoff
    group by profile_id
),

final as (
    select
        known_profiles.profile_id,

        {{ dbt.datediff('known_profiles.first_seen_at', cutoff, 'day') }} as tenure_days,
        {{ dbt.datediff('activity.last_event_at', cutoff, 'day') }} as days_since_last_event,
        {{ dbt.datediff('activity.last_purchase_at', cutoff, 'day') }} as recency_days,
        {{ dbt.datediff('activity.first_purchase_at', cutoff, 'day') }} as days_since_first_purchase,

        coalesce(activity.purchases, 0) as purchases,
        coalesce(activity.store_purchases, 0) as store_purchases,
        coalesce(activity.purchases_90d, 0) as purchases_90d,
        coalesce(activity.purchases_180d, 0) as purchases_180d,
        coalesce(activity.purchases_365d, 0) as purchases_365d,
        coalesce(activity.returned_or_cancelled_orders, 0) as returned_or_cancelled_orders,

        cast(coalesce(activity.net_value, 0) as decimal(18, 2)) as net_value,
        cast(coalesce(activity.net_value_90d, 0) as decimal(18, 2)) as net_value_90d,
        cast(coalesce(activity.net_value_365d, 0) as decimal(18, 2)) as net_value_365d,
        {{ money_divided_by('activity.gross_purchase_value', 'activity.purchases') }} as avg_order_value,

        coalesce(activity.emails_sent_90d, 0) as emails_sent_90d,
        coalesce(activity.email_opens_90d, 0) as email_opens_90d,
        coalesce(activity.email_clicks_90d, 0) as email_clicks_90d,
        coalesce(activity.web_events_30d, 0) as web_events_30d,
        coalesce(activity.web_events_90d, 0) as web_events_90d,
        coalesce(activity.searches_90d, 0) as searches_90d,
        coalesce(activity.cart_adds_without_order_30d, 0) as cart_adds_without_order_30d,
        coalesce(activity.support_tickets_365d, 0) as support_tickets_365d,

        coalesce(activity.email_opt_outs, 0) > 0 as has_opted_out_of_email
    from known_profiles
    left join activity on activity.profile_id = known_profiles.profile_id
)

select * from final
{% endmacro %}


{#-
    Whether the features of a row of `profiles` are computed this build: always, but in a
    per-profile incremental model updated in place (see predictive_features), where the other rows
    are kept from the previous build. Their tenure is the one input besides the profile's own events.
-#}
{%- macro predictive_features_recomputed(profiles, cutoff) -%}
    {%- if cdp.is_updating() and not cdp.affects_everyone() -%}
        (
            {{ cdp.is_affected_profile(profiles ~ '.profile_id') }}
            or not exists (
                select 1 from {{ this }} as kept
                where kept.profile_id = {{ profiles }}.profile_id
                    and kept.tenure_days = {{ dbt.datediff(profiles ~ '.first_seen_at', cutoff, 'day') }}
            )
        )
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro -%}


{#- The instant every predictive window ends at: var('as_of'). -#}
{%- macro predictive_as_of() -%}
    cast('{{ var("as_of") }}' as {{ dbt.type_timestamp() }})
{%- endmacro -%}


{#- Days in the prediction horizon (labels, expected value); the `_90d` column names follow it. -#}
{%- macro predictive_horizon_days() -%}
    {{ return(90) }}
{%- endmacro -%}


{#- The calibration cutoff: as_of minus the horizon. Features before it, labels from it to as_of. -#}
{%- macro predictive_calibration_cutoff() -%}
    {{ dbt.dateadd('day', -1 * predictive_horizon_days(), predictive_as_of()) }}
{%- endmacro -%}


{#- True for an event no more than `days` days before the cutoff (events are already filtered to before it). -#}
{%- macro predictive_within(days, cutoff) -%}
    occurred_at >= {{ dbt.dateadd('day', -1 * days, cutoff) }}
{%- endmacro -%}


{#- True for a purchase: a completed shop order or a POS sale. Over profile_events columns. -#}
{%- macro predictive_is_purchase() -%}
    (
        (source = 'shop' and event_type = 'order_placed' and status = 'completed')
        or (source = 'pos' and event_type = 'store_purchase' and amount > 0)
    )
{%- endmacro -%}


{#- Money an event is worth: completed shop orders and every POS amount (returns are negative). -#}
{%- macro predictive_net_value() -%}
    case
        when source = 'shop' and event_type = 'order_placed' and status = 'completed' then amount
        when source = 'pos' and event_type = 'store_purchase' then amount
        else 0
    end
{%- endmacro -%}
