{#-
    One row per behavioural cluster (int_predictive__cluster_assignments: k-means on today's
    features): its size, the key features in real units (means and medians), a generated
    short name and a one-sentence description, and how the fit was chosen.

    The name is built from the cluster's figures beside everyone's:
      value    'non-buyers' when under half have bought; otherwise 'high value' (mean net
               value >= 1.5x the buyers' mean), 'mid value' (>= 0.67x) or 'low value';
      recency  buyers: 'recent' (median days since last purchase <= 90), 'lapsing' (<= 365),
               'lapsed'; non-buyers: 'active' (median days since last event <= 30) or 'dormant';
      traits   'in-store' (half the purchases at the till), 'email-clicking' (mean clicks
               >= 1.5x everyone's) or else 'email-engaged' (mean opens >= 1.5x everyone's),
               'browsing' (mean web events >= 1.5x everyone's),
               'cart abandoning' (mean cart adds without order >= 2x everyone's).
    Two clusters with the same name get ' (cluster N)' appended.
-#}

with

assignments as (
    select * from {{ ref('int_predictive__cluster_assignments') }}
),

scoring_set as (
    select * from {{ ref('int_predictive__scoring_set') }}
),

profile_scores as (
    select * from {{ ref('profile_scores') }}
),

members as (
    select
        assignments.cluster_id,
        assignments.silhouette,
        assignments.k,
        assignments.overall_silhouette,
        assignments.selection_criterion,
        scoring_set.*,
        profile_scores.churn_probability,
        profile_scores.expected_value_90d
    from assignments
    inner join scoring_set on scoring_set.profile_id = assignments.profile_id
    left join profile_scores on profile_scores.profile_id = assignments.profile_id
),

everyone as (
    select
        count(*) as profiles,
        avg(case when purchases > 0 then net_value end) as buyer_mean_net_value,
        avg(email_opens_90d) as mean_email_opens_90d,
        avg(email_clicks_90d) as mean_email_clicks_90d,
        avg(web_events_90d) as mean_web_events_90d,
        avg(cart_adds_without_order_30d) as mean_cart_adds_without_order_30d
    from members
),

clusters as (
    select
        cluster_id,
        max(k) as k,
        max(overall_silhouette) as overall_silhouette,
        max(selection_criterion) as selection_criterion,
        avg(silhouette) as silhouette,
        count(*) as profiles,
        avg(case when purchases > 0 then cast(1 as {{ type_double() }}) else 0 end) as buyer_share,
        avg(purchases) as mean_purchases,
        {{ predictive_median('purchases') }} as median_purchases,
        avg(net_value) as mean_net_value,
        {{ predictive_median('net_value') }} as median_net_value,
        {{ predictive_median('recency_days') }} as median_recency_days,
        {{ predictive_median('days_since_last_event') }} as median_days_since_last_event,
        {{ predictive_median('tenure_days') }} as median_tenure_days,
        avg(email_opens_90d) as mean_email_opens_90d,
        avg(email_clicks_90d) as mean_email_clicks_90d,
        avg(web_events_90d) as mean_web_events_90d,
        avg(cart_adds_without_order_30d) as mean_cart_adds_without_order_30d,
        cast(sum(store_purchases) as {{ type_double() }}) / nullif(sum(purchases), 0) as store_purchase_share,
        avg(churn_probability) as mean_churn_probability,
        avg(expected_value_90d) as mean_expected_value_90d
    from members
    group by cluster_id
),

named_parts as (
    select
        clusters.*,
        everyone.profiles as all_profiles,
        case
            when clusters.buyer_share < 0.5 then 'non-buyers'
            when clusters.mean_net_value >= 1.5 * everyone.buyer_mean_net_value then 'high value'
            when clusters.mean_net_value >= 0.67 * everyone.buyer_mean_net_value then 'mid value'
            else 'low value'
        end as value_word,
        case
            when clusters.buyer_share >= 0.5 and clusters.median_recency_days <= 90 then 'recent'
            when clusters.buyer_share >= 0.5 and clusters.median_recency_days <= 365 then 'lapsing'
            when clusters.buyer_share >= 0.5 then 'lapsed'
            when clusters.median_days_since_last_event <= 30 then 'active'
            else 'dormant'
        end as recency_word,
        case when clusters.store_purchase_share >= 0.5 then ', in-store' else '' end as store_word,
        case
            when clusters.mean_email_clicks_90d > 0
                and clusters.mean_email_clicks_90d >= 1.5 * everyone.mean_email_clicks_90d then ', email-clicking'
            when clusters.mean_email_opens_90d > 0
                and clusters.mean_email_opens_90d >= 1.5 * everyone.mean_email_opens_90d then ', email-engaged'
            else ''
        end as email_word,
        case
            when clusters.mean_web_events_90d > 0
                and clusters.mean_web_events_90d >= 1.5 * everyone.mean_web_events_90d then ', browsing'
            else ''
        end as web_word,
        case
            when clusters.mean_cart_adds_without_order_30d > 0
                and clusters.mean_cart_adds_without_order_30d >= 2 * everyone.mean_cart_adds_without_order_30d
                then ', cart abandoning'
            else ''
        end as cart_word
    from clusters
    cross join everyone
),

named as (
    select
        *,
        value_word || ', ' || recency_word || store_word || email_word || web_word || cart_word as base_name
    from named_parts
),

deduplicated as (
    select
        *,
        case
            when count(*) over (partition by base_name) > 1
                then base_name || ' (cluster ' || cast(cluster_id as {{ dbt.type_string() }}) || ')'
            else base_name
        end as cluster_name
    from named
),

-- the description reads as the sentence it builds: continuation lines aligned by hand
-- noqa: disable=LT02
described as (
    select
        *,
        cast(profiles as {{ dbt.type_string() }}) || ' profiles ('
            || {{ number_text('100.0 * profiles / all_profiles', 0) }}
            || '% of all); '
            || {{ number_text('100 * buyer_share', 0) }} || '% have bought'
            || case
                when buyer_share >= 0.5 then
                    ', ' || {{ number_text('mean_purchases', 1) }} || ' purchases worth '
                    || {{ number_text('mean_net_value', 2) }} || ' on average, median '
                    || {{ number_text('median_recency_days', 0) }}
                    || ' days since the last purchase'
                else ''
            end
            || '; median '
            || coalesce({{ number_text('median_days_since_last_event', 0) }}, 'n/a')
            || ' days since the last event, '
            || {{ number_text('mean_email_opens_90d', 1) }} || ' email opens and '
            || {{ number_text('mean_web_events_90d', 1) }} || ' web events in 90 days'
            || coalesce(
                '; expected 90-day value ' || {{ number_text('mean_expected_value_90d', 2) }},
                ''
            )
            || case
                when buyer_share >= 0.5 then coalesce(
                    ', churn probability ' || {{ number_text('mean_churn_probability', 2) }},
                    ''
                )
                else ''
            end
            || '.' as description
    from deduplicated
),
-- noqa: enable=LT02

final as (
    select
        cast(cluster_id as integer) as cluster_id,
        cast(cluster_name as {{ dbt.type_string() }}) as cluster_name,
        cast(description as {{ dbt.type_string() }}) as description,
        cast(profiles as {{ dbt.type_bigint() }}) as profiles,
        cast(profiles as {{ type_double() }}) / all_profiles as share,
        cast(buyer_share as {{ type_double() }}) as buyer_share,
        cast(mean_purchases as {{ type_double() }}) as mean_purchases,
        cast(median_purchases as {{ type_double() }}) as median_purchases,
        cast(mean_net_value as {{ type_double() }}) as mean_net_value,
        cast(median_net_value as {{ type_double() }}) as median_net_value,
        cast(median_recency_days as {{ type_double() }}) as median_recency_days,
        cast(median_days_since_last_event as {{ type_double() }}) as median_days_since_last_event,
        cast(median_tenure_days as {{ type_double() }}) as median_tenure_days,
        cast(mean_email_opens_90d as {{ type_double() }}) as mean_email_opens_90d,
        cast(mean_email_clicks_90d as {{ type_double() }}) as mean_email_clicks_90d,
        cast(mean_web_events_90d as {{ type_double() }}) as mean_web_events_90d,
        cast(mean_cart_adds_without_order_30d as {{ type_double() }}) as mean_cart_adds_without_order_30d,
        cast(store_purchase_share as {{ type_double() }}) as store_purchase_share,
        cast(mean_churn_probability as {{ type_double() }}) as mean_churn_probability,
        cast(mean_expected_value_90d as {{ type_double() }}) as mean_expected_value_90d,
        cast(silhouette as {{ type_double() }}) as silhouette,
        cast(overall_silhouette as {{ type_double() }}) as overall_silhouette,
        cast(k as integer) as k,
        cast(selection_criterion as {{ dbt.type_string() }}) as selection_criterion,
        {{ predictive_as_of() }} as clustered_at
    from described
)

select * from final
