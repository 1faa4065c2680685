{#-
    Every computed attribute, one row per profile (every profile in `profiles`: counts are 0
    and facts NULL where there is no activity), all relative to one instant, var('as_of').
    The rules live in the intermediate models, each with its own header:
        int_attributes__purchases            counts, net value, dates, frequency, channel mix
        int_attributes__preferred_category   top category by revenue in completed orders
        int_attributes__rfm_scores           R, F, M quintile scores over purchasers
        int_attributes__rfm                  R x FM grid -> rfm_segment
        int_attributes__lifecycle            lifecycle_stage, first matching rule wins
        int_attributes__engagement           email / web counts over 30 and 90 days, engagement_score
        int_attributes__support              open support tickets
        int_attributes__consent              consent per purpose, deletion requests
-#}
{%- set as_of = "cast('" ~ var('as_of') ~ "' as timestamp)" -%}

with

profiles as (
    select * from {{ ref('profiles') }}
),

purchases as (
    select * from {{ ref('int_attributes__purchases') }}
),

preferred_category as (
    select * from {{ ref('int_attributes__preferred_category') }}
),

rfm as (
    select * from {{ ref('int_attributes__rfm') }}
),

lifecycle as (
    select * from {{ ref('int_attributes__lifecycle') }}
),

engagement as (
    select * from {{ ref('int_attributes__engagement') }}
),

support as (
    select * from {{ ref('int_attributes__support') }}
),

consent as (
    select * from {{ ref('int_attributes__consent') }}
),

scores as (
    select * from {{ ref('profile_scores') }}
),

clusters as (
    select * from {{ ref('profile_clusters') }}
),

final as (
    select
        -- ids
        profiles.profile_id,

        -- strings
        lifecycle.lifecycle_stage,
        rfm.rfm_segment,
        purchases.channel_mix,
        preferred_category.preferred_category,
        clusters.cluster_name,

        -- numbers: purchases
        purchases.orders_count,
        purchases.online_orders_count,
        purchases.store_purchases_count,
        purchases.lifetime_value,
        purchases.average_order_value,
        purchases.online_share_of_value,
        purchases.purchase_frequency_per_month,
        purchases.days_since_last_purchase,

        -- numbers: predictive (models/predictive)
        scores.churn_probability,
        scores.expected_value_90d,
        clusters.cluster_id,

        -- numbers: rfm
        rfm.recency_score,
        rfm.frequency_score,
        rfm.monetary_score,

        -- numbers: engagement and support
        coalesce(engagement.engagement_score, 0) as engagement_score,
        coalesce(engagement.email_opens_30d, 0) as email_opens_30d,
        coalesce(engagement.email_clicks_30d, 0) as email_clicks_30d,
        coalesce(engagement.email_opens_90d, 0) as email_opens_90d,
        coalesce(engagement.email_clicks_90d, 0) as email_clicks_90d,
        coalesce(engagement.web_sessions_30d, 0) as web_sessions_30d,
        coalesce(engagement.web_sessions_90d, 0) as web_sessions_90d,
        coalesce(support.open_support_tickets, 0) as open_support_tickets,

        -- booleans: one consent flag per purpose of var('consent_purposes')
        {%- for purpose in var('consent_purposes') %}
        coalesce(consent.{{ consent_column(purpose) }}, false) as {{ consent_column(purpose) }},
        {%- endfor %}
        coalesce(consent.is_deletion_requested, false) as is_deletion_requested,

        -- timestamps
        purchases.first_purchase_at,
        purchases.last_purchase_at,
        consent.deletion_requested_at,
        {{ as_of }} as as_of

    from profiles
    inner join purchases on purchases.profile_id = profiles.profile_id
    inner join lifecycle on lifecycle.profile_id = profiles.profile_id
    left join preferred_category on preferred_category.profile_id = profiles.profile_id
    left join rfm on rfm.profile_id = profiles.profile_id
    left join engagement on engagement.profile_id = profiles.profile_id
    left join support on support.profile_id = profiles.profile_id
    left join consent on consent.profile_id = profiles.profile_id
    left join scores on scores.profile_id = profiles.profile_id
    left join clusters on clusters.profile_id = profiles.profile_id
)

select * from final
