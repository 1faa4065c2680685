"""Churn and 90-day value models: fit on the calibration set, predict its validation split and
today's profiles. The fitting lives in cdp/predictive/scores.py (the predictive step runs the same
code on engines without dbt Python models; see that module for the models and their choices).

Only the columns the models read cross into pandas, already sorted by profile_id (DuckDB sorts in
parallel; the models sort again, which costs nothing on sorted rows), as Arrow-backed frames
(cdp/predictive/inputs.py: the same values as ``.df()``, half the memory at 1M people).

A build whose inputs (those columns) and code did not change copies the table as it stands
instead of fitting again: the same fits give the same table (cdp/predictive/reuse.py; the hooks
that keep its bookkeeping are in _predictive__models.yml).

Output: one row per (scored_set, profile_id); scored_set is 'validation' or 'current'.
"""

from cdp.predictive.reuse import computed_unless_unchanged
from cdp.predictive.scores import FEATURES, TRAINING_COLUMNS, predictions


def model(dbt, session):
    training = (dbt.ref("int_predictive__training_set"), [*TRAINING_COLUMNS, *FEATURES])
    current = (dbt.ref("int_predictive__scoring_set"), ["profile_id", *FEATURES])
    return computed_unless_unchanged(dbt, session, predictions, [training, current])
