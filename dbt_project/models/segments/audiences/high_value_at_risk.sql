-- Top-quintile spenders whose recency has dropped to the bottom two quintiles.
{{ has_attribute("monetary_score = 5 and recency_score <= 2") }}
