{#-
    RFM segment of every scored profile, from the standard recency x frequency-monetary grid.
    fm_score = (frequency_score + monetary_score) / 2 rounded half up, so 4 and 5 give 5, 1 and 2 give 2.

        fm \ r   1             2             3                4                   5
        5        Can't Lose    Can't Lose    Loyal            Champions           Champions
        4        At Risk       At Risk       Loyal            Champions           Champions
        3        At Risk       At Risk       Need Attention   Potential Loyalist  Potential Loyalist
        2        Lost          Hibernating   Need Attention   Potential Loyalist  Potential Loyalist
        1        Lost          Hibernating   Promising        Promising           New

    Every cell has exactly one name; profiles that never bought have no scores and no segment.
-#}

with

rfm_scores as (
    select * from {{ ref('int_attributes__rfm_scores') }}
),

with_fm as (
    select
        *,
        cast(floor((frequency_score + monetary_score + 1) / 2.0) as integer) as fm_score
    from rfm_scores
),

final as (
    select
        profile_id,
        case
            when recency_score >= 4 and fm_score >= 4 then 'Champions'
            when recency_score = 3 and fm_score >= 4 then 'Loyal'
            when recency_score >= 4 and fm_score >= 2 then 'Potential Loyalist'
            when recency_score = 5 and fm_score = 1 then 'New'
            when recency_score >= 3 and fm_score = 1 then 'Promising'
            when recency_score = 3 then 'Need Attention'
            when recency_score <= 2 and fm_score = 5 then 'Can''t Lose'
            when recency_score <= 2 and fm_score >= 3 then 'At Risk'
            when recency_score = 2 then 'Hibernating'
            else 'Lost'
        end as rfm_segment,
        recency_score,
        frequency_score,
        monetary_score,
        fm_score
    from with_fm
)

select * from final
