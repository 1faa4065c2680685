-- Customers the churn model gives at least var('high_churn_risk_threshold') probability of not
-- buying in the next 90 days (prospects have no churn score).
select profile_id
from {{ ref('profile_scores') }}
where churn_probability >= {{ var('high_churn_risk_threshold', 0.7) }}
