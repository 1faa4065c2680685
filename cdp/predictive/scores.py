"""Churn and 90-day value models: fit on the calibration set, predict its validation split
and today's profiles. The dbt Python model int_predictive__predictions (DuckDB) and the
predictive step (cdp/predictive/step.py: Postgres, Spark) both call ``predictions``.

Features come from SQL (int_predictive__training_set / int_predictive__scoring_set, both
built by the predictive_features macro); this model only fits and predicts.

* churn: HistGradientBoostingClassifier on people who had purchased before the cutoff,
  label `churned` (no purchase in the next 90 days).
* value_90d: HistGradientBoostingRegressor with a Poisson loss (non-negative, right-skewed
  target) on everyone known at the cutoff, label max(value_next_90d, 0).

Both learn from the training split only (`not is_validation`); the same fitted models score
the validation split (for predictive_model_quality) and today's features (profile_scores),
so the quality figures describe the models that made the scores. Gradient boosting needs
no scaling and takes missing recencies (never purchased) as they are. Fixed random_state:
the same data gives the same scores.

Each fit runs single-threaded (threadpoolctl): OpenMP's waiting threads slow gradient
boosting down many times over when cores are shared, and a multi-threaded fit sums gradients
in an order that depends on the thread count, so its scores would depend on the machine. The
two models are independent, though, so they fit side by side (TWO_WORKERS threads, each
single-threaded), and then both threads score each set's chunks: the same fits, the same
scores, in about half the wall time where dbt leaves a core free (it does: everything
downstream waits for this model). Scoring the validation set and today's profiles each on one
thread left a core idle for 6 of the 8 s today's million took at 1M people.

Memory: at 1M people this model sets the peak of a whole build (its process is dbt's). So no
copy of an input frame is made: each fit gets the float matrix of its own rows (freed when the
fit returns), and scoring builds the features of SCORING_CHUNK_ROWS rows at a time (a row's
score depends on that row alone: the same scores as all at once).

Output: one row per (scored_set, profile_id); scored_set is 'validation' or 'current'.
churn_probability is NULL for people who had never purchased.

A world too small to learn from (fewer than MIN_TRAINING_ROWS training rows, or one class
only — a brand-new warehouse, a test fixture) gets prior models instead: the training churn
rate and mean value for everyone (sklearn's Dummy* estimators), so the build never fails on
little data; with no training rows at all the scores are NULL.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

RANDOM_STATE = 20261101
MIN_TRAINING_ROWS = 50
#: Fits running side by side; each is single-threaded, so the results do not depend on it.
TWO_WORKERS = 2
#: Rows scored at a time (scores_of): the same scores as all at once, a tenth of the memory at 1M people.
SCORING_CHUNK_ROWS = 100_000

#: The columns ``predictions`` reads: of the training set (the scoring set needs only
#: profile_id and FEATURES). The dbt model fetches only these.
TRAINING_COLUMNS = ["profile_id", "is_validation", "churned", "value_next_90d"]

FEATURES = [
    "tenure_days",
    "days_since_last_event",
    "recency_days",
    "days_since_first_purchase",
    "purchases",
    "store_purchases",
    "purchases_90d",
    "purchases_180d",
    "purchases_365d",
    "returned_or_cancelled_orders",
    "net_value",
    "net_value_90d",
    "net_value_365d",
    "avg_order_value",
    "emails_sent_90d",
    "email_opens_90d",
    "email_clicks_90d",
    "web_events_30d",
    "web_events_90d",
    "searches_90d",
    "cart_adds_without_order_30d",
    "support_tickets_365d",
    "has_opted_out_of_email",
]

T = TypeVar("T")


def single_threaded(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` with OpenMP and BLAS on one thread. OpenMP's limit belongs to the
    calling thread, so a worker thread sets its own (threadpoolctl): unlimited, a worker's fit
    would use every core and sum gradients in another order."""
    with threadpool_limits(limits=1):
        return function(*args)


def feature_matrix(frame: pd.DataFrame, rows: np.ndarray | None = None) -> np.ndarray:
    """FEATURES of ``frame`` (of its ``rows``: a boolean mask or positions, if given) as one float64
    matrix, NaN where a value is missing. Filled a column at a time: no float copy of the frame on the way."""
    x = np.empty((0, len(FEATURES)))
    for j, name in enumerate(FEATURES):
        column = frame[name] if rows is None else frame[name].iloc[rows]
        values = column.to_numpy(dtype="float64", na_value=np.nan)
        if j == 0:
            x = np.empty((len(values), len(FEATURES)), dtype="float64", order="F")
        x[:, j] = values
    return x


def has_purchased(frame: pd.DataFrame) -> np.ndarray:
    """Whether each row's person had purchased (``purchases > 0``; a missing count is no)."""
    return (frame["purchases"] > 0).to_numpy(dtype=bool, na_value=False)


def fit(estimator, fallback, x: np.ndarray, y: np.ndarray):
    """The estimator, or the prior-only fallback when there is too little to learn from."""
    if len(y) == 0:
        return None
    if len(y) < MIN_TRAINING_ROWS or len(np.unique(y)) < 2:
        return fallback.fit(x, y)
    return estimator.fit(x, y)


def churn_probabilities(churn, is_customer: np.ndarray, x: np.ndarray) -> np.ndarray:
    """P(churn) for the customers among the rows of ``x`` (``is_customer``); NaN for the rest, and
    for everyone without a model."""
    churn_probability = np.full(len(x), np.nan)
    if churn is not None and is_customer.any():
        classes = list(churn.classes_)  # a prior fitted on one class knows only that class
        churned = churn.predict_proba(x[is_customer])[:, classes.index(True)] if True in classes else 0.0
        churn_probability[is_customer] = churned
    return churn_probability


def expected_values(value, x: np.ndarray) -> np.ndarray:
    """Expected 90-day value from features ``x``, floored at 0 (NaN for everyone without a model)."""
    if value is None or not len(x):
        return np.full(len(x), np.nan)
    return np.clip(value.predict(x), 0.0, None)


def fit_churn(x: np.ndarray, churned: np.ndarray):
    return fit(
        HistGradientBoostingClassifier(random_state=RANDOM_STATE),
        DummyClassifier(strategy="prior"),
        x,
        churned,
    )


def fit_value(x: np.ndarray, value_next_90d: np.ndarray):
    return fit(
        HistGradientBoostingRegressor(loss="poisson", random_state=RANDOM_STATE),
        DummyRegressor(strategy="mean"),
        x,
        np.clip(value_next_90d, 0.0, None),
    )


def scores_of(
    churn, value, frame: pd.DataFrame, rows: np.ndarray | None = None, pool: ThreadPoolExecutor | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(churn probability, expected 90-day value) of the rows of ``frame`` (``rows``, a boolean mask, or all),
    SCORING_CHUNK_ROWS at a time: a row's score depends on that row alone, so chunks give the same scores
    with a chunk's features in memory instead of the frame's. Given a ``pool``, its threads score the
    chunks side by side (each single-threaded; prediction releases the GIL)."""
    positions = np.arange(len(frame)) if rows is None else np.flatnonzero(rows)
    purchased = has_purchased(frame)
    churn_probability = np.empty(len(positions))
    expected_value = np.empty(len(positions))

    def score(start: int) -> None:
        chunk = positions[start : start + SCORING_CHUNK_ROWS]
        x = feature_matrix(frame, chunk)
        churn_probability[start : start + len(chunk)] = churn_probabilities(churn, purchased[chunk], x)
        expected_value[start : start + len(chunk)] = expected_values(value, x)

    starts = range(0, len(positions), SCORING_CHUNK_ROWS)
    if pool is None:
        for start in starts:
            score(start)
    else:
        for job in [pool.submit(single_threaded, score, start) for start in starts]:
            job.result()
    return churn_probability, expected_value


def scored(profile_ids: pd.Series, scored_set: str, churn_probability: np.ndarray, expected_value: np.ndarray):
    return pd.DataFrame(
        {
            "scored_set": pd.Series([scored_set] * len(profile_ids), dtype="string"),
            "profile_id": pd.Series(profile_ids.to_numpy(), dtype="string"),
            "churn_probability": churn_probability,
            "expected_value_90d": expected_value,
        }
    )


def fit_and_predict(training: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """Fit on the training rows of ``training``, score its validation rows and ``current`` (no copy of
    either frame: see Memory above)."""
    training = training.sort_values("profile_id", ignore_index=True)  # no copy when sorted already
    current = current.sort_values("profile_id", ignore_index=True)
    is_validation = training["is_validation"].astype(bool).to_numpy()
    in_training = ~is_validation
    is_customer = in_training & has_purchased(training)

    # one thread per model, each single-threaded; a job's arguments are freed when its fit returns
    with ThreadPoolExecutor(max_workers=TWO_WORKERS) as pool:
        churn_job = pool.submit(
            single_threaded,
            fit_churn,
            feature_matrix(training, is_customer),
            training["churned"][is_customer].astype(bool).to_numpy(),
        )
        value_job = pool.submit(
            single_threaded,
            fit_value,
            feature_matrix(training, in_training),
            training["value_next_90d"][in_training].astype("float64").to_numpy(),
        )
        churn, value = churn_job.result(), value_job.result()
        validation_scores = scores_of(churn, value, training, is_validation, pool)
        current_scores = scores_of(churn, value, current, None, pool)

    return pd.concat(
        [
            scored(training["profile_id"][is_validation], "validation", *validation_scores),
            scored(current["profile_id"], "current", *current_scores),
        ],
        ignore_index=True,
    )


def predictions(training: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """int_predictive__predictions from its two inputs (int_predictive__training_set, _scoring_set): each model
    fitted single-threaded, the two side by side."""
    return single_threaded(fit_and_predict, training, current)
