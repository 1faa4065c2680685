{#-
    Predictive scores, one row per profile known at as_of (every profile in `profiles` when
    as_of is after the data, as by default): churn probability and expected 90-day value
    from the models in int_predictive__predictions, scored on today's features.

    churn_probability is only defined for customers (at least one purchase before as_of);
    people who never bought cannot churn and get NULL, so a "churn risk above X" segment
    never picks up a prospect. expected_value_90d is defined for everyone: prospects can
    convert, and their expected value is usually small.
-#}

with

scoring_set as (
    select * from {{ ref('int_predictive__scoring_set') }}
),

predictions as (
    select * from {{ ref('int_predictive__predictions') }}
    where scored_set = 'current'
),

final as (
    select
        scoring_set.profile_id,
        scoring_set.purchases > 0 as is_customer,
        cast(predictions.churn_probability as {{ type_double() }}) as churn_probability,
        cast(predictions.expected_value_90d as {{ type_double() }}) as expected_value_90d,
        {{ predictive_as_of() }} as scored_at
    from scoring_set
    left join predictions on predictions.profile_id = scoring_set.profile_id
)

select * from final
