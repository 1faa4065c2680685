{#-
    How good the churn and value models are, on the validation split of the calibration set
    (profiles the models never trained on), beside a simple baseline — one row per
    (model, metric) for this build.

      churn      auc    vs recency only: days since the last purchase as the churn score
                 brier  vs the training churn rate given to everyone
      value_90d  mae, rmse, relative_total_error
                        vs the last 90 days' net value carried forward

    Value targets are floored at zero, as the model's expected_value_90d is.
    AUC is the Mann-Whitney statistic (ties get average ranks), computed here in SQL.
-#}

with

training_set as (
    select * from {{ ref('int_predictive__training_set') }}
),

predictions as (
    select * from {{ ref('int_predictive__predictions') }}
    where scored_set = 'validation'
),

validation as (
    select
        training_set.profile_id,
        training_set.churned,
        training_set.recency_days,
        case when training_set.net_value_90d > 0 then training_set.net_value_90d else 0 end as carried_forward_value,
        case when training_set.value_next_90d > 0 then training_set.value_next_90d else 0 end as actual_value,
        predictions.churn_probability,
        predictions.expected_value_90d
    from training_set
    inner join predictions on predictions.profile_id = training_set.profile_id
    where training_set.is_validation
),

training_split as (
    select
        count(case when purchases > 0 then 1 end) as churn_n_train,
        count(*) as value_n_train,
        avg(case when churned then 1.0 when not churned then 0.0 end) as churn_rate
    from training_set
    where not is_validation
),

churn_scores as (
    select
        'model' as scorer,
        churn_probability as score,
        churned
    from validation
    where churned is not null and churn_probability is not null
    union all
    select
        'baseline' as scorer,
        recency_days as score,
        churned
    from validation
    where churned is not null and churn_probability is not null
),

churn_ranks as (
    select
        scorer,
        churned,
        rank() over (partition by scorer order by score)
        + (count(*) over (partition by scorer, score) - 1) / 2.0 as average_rank
    from churn_scores
),

churn_auc as (
    select
        scorer,
        (
            sum(case when churned then average_rank else 0 end)
            - count(case when churned then 1 end) * (count(case when churned then 1 end) + 1) / 2.0
        ) / nullif(count(case when churned then 1 end) * count(case when not churned then 1 end), 0) as auc
    from churn_ranks
    group by scorer
),

churn_errors as (
    select
        avg(power(validation.churn_probability - case when validation.churned then 1 else 0 end, 2)) as brier,
        avg(power(training_split.churn_rate - case when validation.churned then 1 else 0 end, 2)) as baseline_brier,
        count(*) as n_holdout
    from validation
    cross join training_split
    where validation.churned is not null and validation.churn_probability is not null
),

value_errors as (
    select
        avg(abs(expected_value_90d - actual_value)) as mae,
        avg(abs(carried_forward_value - actual_value)) as baseline_mae,
        sqrt(avg(power(expected_value_90d - actual_value, 2))) as rmse,
        sqrt(avg(power(carried_forward_value - actual_value, 2))) as baseline_rmse,
        (sum(expected_value_90d) - sum(actual_value)) / nullif(sum(actual_value), 0) as relative_total_error,
        (sum(carried_forward_value) - sum(actual_value))
        / nullif(sum(actual_value), 0) as baseline_relative_total_error,
        count(*) as n_holdout
    from validation
    where expected_value_90d is not null
),

metrics as (
    select
        'churn' as model,
        'auc' as metric,
        (
            select auc from churn_auc
            where scorer = 'model'
        ) as value,
        'recency only (days since last purchase)' as baseline_name,
        (
            select auc from churn_auc
            where scorer = 'baseline'
        ) as baseline_value,
        training_split.churn_n_train as n_train,
        churn_errors.n_holdout
    from training_split cross join churn_errors
    union all
    select
        'churn' as model,
        'brier' as metric,
        churn_errors.brier as value,
        'training churn rate for everyone' as baseline_name,
        churn_errors.baseline_brier as baseline_value,
        training_split.churn_n_train as n_train,
        churn_errors.n_holdout
    from training_split cross join churn_errors
    union all
    select
        'value_90d' as model,
        'mae' as metric,
        value_errors.mae as value,
        'last 90 days value carried forward' as baseline_name,
        value_errors.baseline_mae as baseline_value,
        training_split.value_n_train as n_train,
        value_errors.n_holdout
    from training_split cross join value_errors
    union all
    select
        'value_90d' as model,
        'rmse' as metric,
        value_errors.rmse as value,
        'last 90 days value carried forward' as baseline_name,
        value_errors.baseline_rmse as baseline_value,
        training_split.value_n_train as n_train,
        value_errors.n_holdout
    from training_split cross join value_errors
    union all
    select
        'value_90d' as model,
        'relative_total_error' as metric,
        value_errors.relative_total_error as value,
        'last 90 days value carried forward' as baseline_name,
        value_errors.baseline_relative_total_error as baseline_value,
        training_split.value_n_train as n_train,
        value_errors.n_holdout
    from training_split cross join value_errors
),

final as (
    select
        cast(model as {{ dbt.type_string() }}) as model,
        cast(metric as {{ dbt.type_string() }}) as metric,
        cast(value as {{ type_double() }}) as value,
        cast(baseline_name as {{ dbt.type_string() }}) as baseline_name,
        cast(baseline_value as {{ type_double() }}) as baseline_value,
        cast(n_train as {{ dbt.type_bigint() }}) as n_train,
        cast(n_holdout as {{ dbt.type_bigint() }}) as n_holdout,
        {{ predictive_as_of() }} as as_of
    from metrics
)

select * from final
