"""Churn and 90-day value models: fit on the calibration set, predict its validation split and
today's profiles. The fitting lives in cdp/predictive/scores.py (the predictive step runs the same
code on engines without dbt Python models; see that module for the models and their choices).

Output: one row per (scored_set, profile_id); scored_set is 'validation' or 'current'.
"""

from cdp.predictive.scores import predictions


def model(dbt, session):
    training = dbt.ref("int_predictive__training_set").df()
    current = dbt.ref("int_predictive__scoring_set").df()
    return predictions(training, current)
