{#-
    The calibration set the churn and value models learn from: every profile known at
    cutoff = as_of - horizon (90 days), with its features at that cutoff and what it then did
    in the holdout window [cutoff, as_of):

      purchases_next_90d   purchases in the window
      value_next_90d       net value in the window (may be negative: returns)
      churned              no purchase in the window — only for people who had purchased
                           before the cutoff (NULL for the rest: they cannot churn)
      is_validation        a fixed ~25% of profiles (by a hash of profile_id) held out to
                           evaluate the models; never trained on

    Features never see the window (predictive_features filters occurred_at < cutoff).
    Incremental per profile (macros/incremental/affected_profiles.sql): a rebuild computes the rows
    of the profiles whose events, identifiers or tenure changed, and keeps the others.
-#}
{%- set cutoff = predictive_calibration_cutoff() -%}

{{ cdp.per_profile_incremental() }}

with

profile_events as (
    select * from {{ ref('profile_events') }}
),

features as (
    {{ predictive_features(cutoff) }}
),

holdout_window as (
    select
        profile_id,
        count(case when {{ predictive_is_purchase() }} then 1 end) as purchases_next_90d,
        sum({{ predictive_net_value() }}) as value_next_90d
    from profile_events
    where occurred_at >= {{ cutoff }}
        and occurred_at < {{ predictive_as_of() }}
        -- the profiles computed (all but on a rebuild, which keeps the others' rows)
        and profile_id in (select features.profile_id from features)
    group by profile_id
),

labelled as (
    select
        features.*,
        coalesce(holdout_window.purchases_next_90d, 0) as purchases_next_90d,
        cast(coalesce(holdout_window.value_next_90d, 0) as decimal(18, 2)) as value_next_90d,
        case
            when features.purchases > 0 then coalesce(holdout_window.purchases_next_90d, 0) = 0
        end as churned,
        {{ dbt.right(dbt.hash('features.profile_id'), 1) }} in ('0', '1', '2', '3') as is_validation
    from features
    left join holdout_window on holdout_window.profile_id = features.profile_id
),

final as (
    select
        *,
        {{ cutoff }} as feature_cutoff
    from labelled
)

select * from final
