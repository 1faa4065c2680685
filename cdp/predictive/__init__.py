"""The predictive models' fitting code, outside dbt and Dagster.

``scores`` (churn and 90-day value) and ``clusters`` (k-means) hold what the dbt Python models
int_predictive__predictions and int_predictive__cluster_assignments do; those models are two
lines that call them. ``step`` runs the same functions where the dbt adapter has no Python models
(Postgres, Spark outside Databricks): it reads the features through the warehouse connection and
writes the results back as the tables the rest of the project reads.
"""
