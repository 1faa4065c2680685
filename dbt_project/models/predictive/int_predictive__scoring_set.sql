{#-
    Today's features: every profile in `profiles`, with its features at as_of (events
    strictly before as_of). The models trained on int_predictive__training_set score these,
    and the clusters are fitted on them. Same columns as the training set's features.
    Incremental per profile, as the training set is.
-#}

{{ cdp.per_profile_incremental() }}

with

features as (
    {{ predictive_features(predictive_as_of()) }}
),

final as (
    select
        *,
        {{ predictive_as_of() }} as feature_cutoff
    from features
)

select * from final
