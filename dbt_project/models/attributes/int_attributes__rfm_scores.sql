{#-
    Recency, frequency and monetary scores (1-5, 5 best) for every profile that has bought
    (orders_count > 0); everyone else is not scored and has no row here.

    Each score is the quintile of the purchasers ranked on one measure, best last:
        recency    last_purchase_at  (later is better)
        frequency  orders_count      (more is better)
        monetary   lifetime_value    (more is better)
    score = 1 + floor(5 * (rank - 1) / purchasers), with rank() = 1 + the number of purchasers
    strictly worse on that measure. For distinct values this is ntile(5); unlike ntile, equal
    values always share a score (every one-order customer gets frequency 1, whoever sorts first),
    so a rebuild on unchanged data never moves anyone between scores, and a better value never
    scores lower. Quintiles rather than fixed thresholds: they adapt to any business's order
    sizes and cadence without tuning, at the price of scores being relative to the customer base.
-#}

with

purchases as (
    select * from {{ ref('int_attributes__purchases') }}
),

purchasers as (
    select
        profile_id,
        last_purchase_at,
        orders_count,
        lifetime_value
    from purchases
    where orders_count > 0
),

ranked as (
    select
        profile_id,
        rank() over (order by last_purchase_at) as recency_rank,
        rank() over (order by orders_count) as frequency_rank,
        rank() over (order by lifetime_value) as monetary_rank,
        count(*) over () as purchaser_count
    from purchasers
),

final as (
    select
        profile_id,
        cast(1 + floor(5.0 * (recency_rank - 1) / purchaser_count) as integer) as recency_score,
        cast(1 + floor(5.0 * (frequency_rank - 1) / purchaser_count) as integer) as frequency_score,
        cast(1 + floor(5.0 * (monetary_rank - 1) / purchaser_count) as integer) as monetary_score
    from ranked
)

select * from final
