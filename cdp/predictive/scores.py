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
single-threaded), and each then scores both sets: the same fits, the same scores, in about
half the wall time where dbt leaves a core free (it does: everything downstream waits for
this model).

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


def feature_matrix(frame: pd.DataFrame) -> np.ndarray:
    return frame[FEATURES].astype("float64").to_numpy()


def fit(estimator, fallback, x: np.ndarray, y: np.ndarray):
    """The estimator, or the prior-only fallback when there is too little to learn from."""
    if len(y) == 0:
        return None
    if len(y) < MIN_TRAINING_ROWS or len(np.unique(y)) < 2:
        return fallback.fit(x, y)
    return estimator.fit(x, y)


def churn_probabilities(churn, frame: pd.DataFrame, x: np.ndarray) -> np.ndarray:
    """P(churn) for the customers of ``frame`` (features ``x``); NaN for the rest, and for everyone without a model."""
    is_customer = (frame["purchases"] > 0).to_numpy()
    churn_probability = np.full(len(frame), np.nan)
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


def scored(frame: pd.DataFrame, scored_set: str, churn_probability: np.ndarray, expected_value: np.ndarray):
    return pd.DataFrame(
        {
            "scored_set": pd.Series([scored_set] * len(frame), dtype="string"),
            "profile_id": pd.Series(frame["profile_id"].to_numpy(), dtype="string"),
            "churn_probability": churn_probability,
            "expected_value_90d": expected_value,
        }
    )


def fit_churn(customers: pd.DataFrame):
    return fit(
        HistGradientBoostingClassifier(random_state=RANDOM_STATE),
        DummyClassifier(strategy="prior"),
        feature_matrix(customers),
        customers["churned"].astype(bool).to_numpy(),
    )


def fit_value(train: pd.DataFrame):
    return fit(
        HistGradientBoostingRegressor(loss="poisson", random_state=RANDOM_STATE),
        DummyRegressor(strategy="mean"),
        feature_matrix(train),
        np.clip(train["value_next_90d"].astype("float64").to_numpy(), 0.0, None),
    )


def churn_model_scores(customers: pd.DataFrame, sets: list[tuple[pd.DataFrame, np.ndarray]]) -> list[np.ndarray]:
    churn = fit_churn(customers)
    return [churn_probabilities(churn, frame, x) for frame, x in sets]


def value_model_scores(train: pd.DataFrame, sets: list[tuple[pd.DataFrame, np.ndarray]]) -> list[np.ndarray]:
    value = fit_value(train)
    return [expected_values(value, x) for _, x in sets]


def fit_and_predict(training: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    training = training.sort_values("profile_id", ignore_index=True)
    current = current.sort_values("profile_id", ignore_index=True)
    train = training[~training["is_validation"].astype(bool)]
    customers = train[train["purchases"] > 0]
    validation = training[training["is_validation"].astype(bool)]
    sets = [(frame, feature_matrix(frame)) for frame in (validation, current)]

    # one thread per model, each single-threaded: each model is fitted once and scores both sets
    with ThreadPoolExecutor(max_workers=TWO_WORKERS) as pool:
        churn_job = pool.submit(single_threaded, churn_model_scores, customers, sets)
        value_job = pool.submit(single_threaded, value_model_scores, train, sets)
        churn_scores, value_scores = churn_job.result(), value_job.result()

    return pd.concat(
        [
            scored(validation, "validation", churn_scores[0], value_scores[0]),
            scored(current, "current", churn_scores[1], value_scores[1]),
        ],
        ignore_index=True,
    )


def predictions(training: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """int_predictive__predictions from its two inputs (int_predictive__training_set, _scoring_set): each model
    fitted single-threaded, the two side by side."""
    return single_threaded(fit_and_predict, training, current)
