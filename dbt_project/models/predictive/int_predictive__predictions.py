"""Churn and 90-day value models: fit on the calibration set, predict its validation split and
today's profiles. The fitting lives in cdp/predictive/scores.py (the predictive step runs the same
code on engines without dbt Python models; see that module for the models and their choices).

Only the columns the models read cross into pandas, already sorted by profile_id (DuckDB sorts in
parallel; the models sort again, which costs nothing on sorted rows), as Arrow-backed frames
(cdp/predictive/inputs.py: the same values as ``.df()``, half the memory at 1M people).

Output: one row per (scored_set, profile_id); scored_set is 'validation' or 'current'.
"""

from cdp.predictive.inputs import frame
from cdp.predictive.scores import FEATURES, TRAINING_COLUMNS, predictions


def model(dbt, session):
    training = frame(dbt.ref("int_predictive__training_set"), [*TRAINING_COLUMNS, *FEATURES])
    current = frame(dbt.ref("int_predictive__scoring_set"), ["profile_id", *FEATURES])
    return predictions(training, current)
