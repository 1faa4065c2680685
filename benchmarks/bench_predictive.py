"""Predictive attributes: our churn and 90-day value models beside baselines and a peer.

For each size (simulated people):

1. generate the sample into a fresh temp DuckDB file and build everything upstream of the
   predictive models (untimed);
2. time ``dbt run --select path:models/predictive`` — features in SQL at two cutoffs, both
   models fitted and scored, clusters — and read ``predictive_model_quality``: churn AUC and
   Brier, value MAE / RMSE / relative total error on the validation split, beside the
   baselines it carries (recency only; last 90 days' value carried forward);
3. peer, like for like: the ``lifetimes`` package's BG/NBD + Gamma-Gamma fitted on the same
   calibration purchases (training-split customers, purchases strictly before the cutoff),
   scored on the same validation customers: churn AUC from P(alive) and from the expected
   number of purchases in the next 90 days, value = expected purchases x Gamma-Gamma's
   expected spend per purchase. Our value model is re-scored on those customers too (its
   quality table also covers never-buyers, which BG/NBD cannot score).

Then once, as an external reference point: the CDNOW data set ``lifetimes`` bundles (23,570
customers, 1997-01 .. 1998-06), split the textbook way into a 39-week calibration and a
39-week holdout, and a fixed-seed 75/25 split of customers: BG/NBD + Gamma-Gamma, our model
class (HistGradientBoosting on the calibration RFM summary) and the baselines, all scored on
the same 25%. Plus BG/NBD fitted and scored on every customer (its usual published setup).

Figures: ``churn_auc`` (churned = no purchase in the holdout window, among customers),
``churn_auc_p_alive`` (BG/NBD's 1 - P(alive) as the score), ``brier``; ``purchases_mae`` /
``purchases_total_error`` (BG/NBD's purchase counts); ``value_mae`` / ``value_rmse`` /
``value_total_error`` ((predicted total - actual total) / actual total). Value targets are
floored at zero, as the model's are. ``seconds``: our predictive dbt step, or the peer's fit.

    .venv/bin/python -m benchmarks.run predictive --sizes 20000 100000
    .venv/bin/python -m benchmarks.bench_predictive 20000

Needs ``lifetimes`` (``pip install -e ".[bench]"``); without it the peer rows say why.
Set CDP_BENCH_KEEP=1 to keep the temp warehouse (its path is printed).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import warnings
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

OURS = "ours: HistGradientBoosting churn + Poisson value (dbt Python models)"
OURS_CUSTOMERS = "ours, scored on validation customers only"
BASELINE = "baseline: recency only / last-90-days value carried forward"
BASELINE_CUSTOMERS = "baseline, on validation customers only"
PEER = "peer: lifetimes BG/NBD + Gamma-Gamma"
CDNOW_PEER = "peer: lifetimes BG/NBD + Gamma-Gamma (75% fit, 25% scored)"
CDNOW_PEER_ALL = "peer: lifetimes BG/NBD, every customer (published setup)"
CDNOW_OURS = "our model class: HistGradientBoosting on RFM (75/25)"
CDNOW_BASELINE = "baseline: recency only / last-39-weeks value carried forward"

AS_OF = datetime(2026, 11, 1)
HORIZON_DAYS = 90
SEED = 42
RANDOM_STATE = 20261101

#: Everything the predictive models read, built untimed.
PREPARE_SELECT = "+profile_events +profiles"

#: Purchases as predictive_is_purchase() / predictive_net_value() define them
#: (dbt_project/macros/predictive/predictive_features.sql).
PURCHASES_SQL = """
select profile_id, occurred_at, cast(amount as double) as amount
from main.profile_events
where (
        (source = 'shop' and event_type = 'order_placed' and status = 'completed')
        or (source = 'pos' and event_type = 'store_purchase' and amount > 0)
    )
    and occurred_at < ?
"""

#: The models' validation predictions are internal (schema `intermediate`, where int_ models
#: live): this benchmark measures them there; product code reads only public models.
VALIDATION_SQL = """
select
    training.profile_id,
    training.churned,
    training.recency_days,
    greatest(cast(training.value_next_90d as double), 0) as actual_value,
    greatest(cast(training.net_value_90d as double), 0) as carried_forward_value,
    predictions.churn_probability,
    predictions.expected_value_90d
from intermediate.int_predictive__training_set as training
inner join intermediate.int_predictive__predictions as predictions
    on predictions.profile_id = training.profile_id and predictions.scored_set = 'validation'
where training.purchases > 0
"""


def _log(message: str) -> None:
    print(f"[predictive {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _dbt(args: list[str], warehouse: Path, dbt_dir: Path) -> None:
    """run_dbt with target/ and logs/ in the benchmark's temp dir (never the project's)."""
    from cdp.dbt import run_dbt

    run_dbt(
        [*args, "--target-path", str(dbt_dir / "target"), "--log-path", str(dbt_dir / "logs")],
        warehouse=warehouse,
        echo=False,
    )


def _lifetimes_problem() -> str | None:
    """None if lifetimes imports and fits here, else why not (shown in the peer rows)."""
    try:
        from lifetimes import BetaGeoFitter
        from lifetimes.datasets import load_cdnow_summary

        summary = load_cdnow_summary(index_col=[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
    except Exception as error:
        return f"lifetimes unavailable: {type(error).__name__}: {error}"
    return None


def _auc(labels, scores) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.asarray(labels, dtype=bool), np.asarray(scores, dtype=float)))


def _errors(actual, predicted) -> dict:
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    return {
        "value_mae": float(np.mean(np.abs(predicted - actual))),
        "value_rmse": float(np.sqrt(np.mean((predicted - actual) ** 2))),
        "value_total_error": float((predicted.sum() - actual.sum()) / actual.sum()),
    }


def _bgnbd_gamma_gamma(calibration: pd.DataFrame, fit_on: pd.Series, horizon: float) -> tuple[pd.DataFrame, float]:
    """Fit BG/NBD (+ Gamma-Gamma on repeat buyers) on the rows where ``fit_on``; predict every row:
    p_alive, expected purchases and expected value over ``horizon`` periods."""
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    train = calibration[fit_on]
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bgf = BetaGeoFitter(penalizer_coef=0.0).fit(train["frequency_cal"], train["recency_cal"], train["T_cal"])
        repeat = train[(train["frequency_cal"] > 0) & (train["monetary_value_cal"] > 0)]
        ggf = GammaGammaFitter(penalizer_coef=0.0).fit(repeat["frequency_cal"], repeat["monetary_value_cal"])
        seconds = time.perf_counter() - started
        purchases = bgf.conditional_expected_number_of_purchases_up_to_time(
            horizon, calibration["frequency_cal"], calibration["recency_cal"], calibration["T_cal"]
        )
        p_alive = bgf.conditional_probability_alive(
            calibration["frequency_cal"], calibration["recency_cal"], calibration["T_cal"]
        )
        spend = ggf.conditional_expected_average_profit(
            calibration["frequency_cal"], calibration["monetary_value_cal"].clip(lower=0)
        )
    predicted = pd.DataFrame(
        {"p_alive": p_alive, "expected_purchases": purchases, "expected_value": purchases * spend},
        index=calibration.index,
    )
    _log(f"BG/NBD {bgf.summary['coef'].round(3).to_dict()}; Gamma-Gamma {ggf.summary['coef'].round(3).to_dict()}")
    return predicted, seconds


def _our_data(people: int) -> list[dict]:
    from cdp.sample_data.generator import GeneratorConfig, generate
    from cdp.warehouse import connect

    workdir = Path(tempfile.mkdtemp(prefix=f"cdp-bench-predictive-{people}-"))
    warehouse = workdir / "warehouse.duckdb"
    dbt_dir = workdir / "dbt"
    keep = os.environ.get("CDP_BENCH_KEEP") == "1"
    base = {"benchmark": "predictive", "dataset": "generated", "people": people}
    try:
        _log(f"{people:,} people: generating into {warehouse}")
        generate(GeneratorConfig(people=people, seed=SEED, as_of=AS_OF), warehouse=warehouse, progress=False)
        started = time.perf_counter()
        _dbt(["build", "--select", PREPARE_SELECT, "--exclude", "resource_type:test"], warehouse, dbt_dir)
        _log(f"upstream built in {time.perf_counter() - started:.1f}s; running the predictive models (timed)")
        started = time.perf_counter()
        _dbt(["run", "--select", "path:models/predictive"], warehouse, dbt_dir)
        ours_seconds = time.perf_counter() - started
        _log(f"predictive step {ours_seconds:.1f}s")

        cutoff = AS_OF - timedelta(days=HORIZON_DAYS)
        with connect(warehouse, read_only=True) as con:
            quality = {
                (model, metric): (value, baseline, n_train, n_holdout)
                for model, metric, value, baseline, n_train, n_holdout in con.execute(
                    "select model, metric, value, baseline_value, n_train, n_holdout from main.predictive_model_quality"
                ).fetchall()
            }
            validation = con.execute(VALIDATION_SQL).df().set_index("profile_id")
            split = (
                con.execute(
                    "select profile_id, is_validation from intermediate.int_predictive__training_set where purchases > 0"
                )
                .df()
                .set_index("profile_id")["is_validation"]
            )
            purchases = con.execute(PURCHASES_SQL, [AS_OF]).df()
            k, silhouette = con.execute(
                "select max(k), max(overall_silhouette) from main.cluster_descriptions"
            ).fetchall()[0]

        def q(model: str, metric: str, index: int = 0):
            return quality[(model, metric)][index]

        rows = [
            {
                **base,
                "method": OURS,
                "population": "customers (churn) / everyone known (value)",
                "churn_auc": q("churn", "auc"),
                "brier": q("churn", "brier"),
                "value_mae": q("value_90d", "mae"),
                "value_rmse": q("value_90d", "rmse"),
                "value_total_error": q("value_90d", "relative_total_error"),
                "n_train": f"{q('churn', 'auc', 2):,} / {q('value_90d', 'mae', 2):,}",
                "n_holdout": f"{q('churn', 'auc', 3):,} / {q('value_90d', 'mae', 3):,}",
                "seconds": ours_seconds,
                "note": f"clusters: k={k}, silhouette {silhouette:.3f}",
            },
            {
                **base,
                "method": BASELINE,
                "population": "customers (churn) / everyone known (value)",
                "churn_auc": q("churn", "auc", 1),
                "brier": q("churn", "brier", 1),
                "value_mae": q("value_90d", "mae", 1),
                "value_rmse": q("value_90d", "rmse", 1),
                "value_total_error": q("value_90d", "relative_total_error", 1),
            },
        ]
        customers = validation
        rows.append(
            {
                **base,
                "method": OURS_CUSTOMERS,
                "population": "validation customers",
                "churn_auc": _auc(customers["churned"], customers["churn_probability"]),
                **_errors(customers["actual_value"], customers["expected_value_90d"]),
                "n_holdout": len(customers),
            }
        )
        rows.append(
            {
                **base,
                "method": BASELINE_CUSTOMERS,
                "population": "validation customers",
                "churn_auc": _auc(customers["churned"], customers["recency_days"]),
                **_errors(customers["actual_value"], customers["carried_forward_value"]),
                "n_holdout": len(customers),
            }
        )

        problem = _lifetimes_problem()
        if problem:
            rows.append({**base, "method": PEER, "note": problem})
            return rows

        from lifetimes.utils import calibration_and_holdout_data

        # calibration: purchases strictly before the cutoff; days as the time unit
        calibration = calibration_and_holdout_data(
            purchases,
            "profile_id",
            "occurred_at",
            calibration_period_end=cutoff - timedelta(seconds=1),
            observation_period_end=AS_OF - timedelta(seconds=1),
            freq="D",
            monetary_value_col="amount",
        )
        calibration = calibration.loc[calibration.index.isin(split.index)]
        fit_on = ~split.reindex(calibration.index).astype(bool)
        predicted, peer_seconds = _bgnbd_gamma_gamma(calibration, fit_on, float(HORIZON_DAYS))
        scored = customers.join(predicted, how="inner")
        if len(scored) != len(customers):
            _log(f"!! BG/NBD scored {len(scored):,} of {len(customers):,} validation customers")
        rows.append(
            {
                **base,
                "method": PEER,
                "population": "validation customers",
                "churn_auc": _auc(scored["churned"], -scored["expected_purchases"]),
                "churn_auc_p_alive": _auc(scored["churned"], 1 - scored["p_alive"]),
                **_errors(scored["actual_value"], scored["expected_value"]),
                "n_train": int(fit_on.sum()),
                "n_holdout": len(scored),
                "seconds": peer_seconds,
            }
        )
        return rows
    finally:
        if keep:
            _log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _cdnow() -> list[dict]:
    """BG/NBD + Gamma-Gamma, our model class and the baselines on CDNOW (bundled with lifetimes)."""
    base = {"benchmark": "predictive", "dataset": "CDNOW (lifetimes)"}
    problem = _lifetimes_problem()
    if problem:
        return [{**base, "method": CDNOW_PEER, "note": problem}]

    from lifetimes.datasets import load_dataset
    from lifetimes.utils import calibration_and_holdout_data
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    transactions = load_dataset(
        "CDNOW_master.txt",
        sep=r"\s+",
        header=None,
        skiprows=1,
        names=["customer_id", "date", "cds", "value"],
        dtype={"customer_id": str, "date": str},
    )
    transactions["date"] = pd.to_datetime(transactions["date"], format="%Y%m%d")
    calibration_end, observation_end = pd.Timestamp("1997-09-30"), pd.Timestamp("1998-06-30")
    holdout_weeks = 39.0
    calibration = calibration_and_holdout_data(
        transactions,
        "customer_id",
        "date",
        calibration_period_end=calibration_end,
        observation_period_end=observation_end,
        freq="W",
        monetary_value_col="value",
    )
    in_holdout = (transactions["date"] > calibration_end) & (transactions["date"] <= observation_end)
    last_39_weeks = (transactions["date"] > calibration_end - pd.Timedelta(weeks=39)) & (
        transactions["date"] <= calibration_end
    )
    calibration["actual_value"] = (
        transactions[in_holdout].groupby("customer_id")["value"].sum().reindex(calibration.index).fillna(0.0)
    )
    calibration["carried_forward_value"] = (
        transactions[last_39_weeks].groupby("customer_id")["value"].sum().reindex(calibration.index).fillna(0.0)
    )
    calibration["churned"] = (calibration["frequency_holdout"] == 0).astype(float)
    calibration["weeks_since_last_purchase"] = calibration["T_cal"] - calibration["recency_cal"]

    rng = np.random.default_rng(RANDOM_STATE)
    is_validation = pd.Series(rng.random(len(calibration)) < 0.25, index=calibration.index)
    validation = calibration[is_validation]
    n_train, n_holdout = int((~is_validation).sum()), int(is_validation.sum())
    purchases_actual = validation["frequency_holdout"]

    predicted, peer_seconds = _bgnbd_gamma_gamma(calibration, ~is_validation, holdout_weeks)
    peer = predicted[is_validation]
    rows = [
        {
            **base,
            "people": len(calibration),
            "method": CDNOW_PEER,
            "population": "25% of customers",
            "churn_auc": _auc(validation["churned"], -peer["expected_purchases"]),
            "churn_auc_p_alive": _auc(validation["churned"], 1 - peer["p_alive"]),
            "purchases_mae": float(np.mean(np.abs(peer["expected_purchases"] - purchases_actual))),
            "purchases_total_error": float(peer["expected_purchases"].sum() / purchases_actual.sum() - 1),
            **_errors(validation["actual_value"], peer["expected_value"]),
            "n_train": n_train,
            "n_holdout": n_holdout,
            "seconds": peer_seconds,
        }
    ]

    everyone, seconds_all = _bgnbd_gamma_gamma(calibration, pd.Series(True, index=calibration.index), holdout_weeks)
    rows.append(
        {
            **base,
            "people": len(calibration),
            "method": CDNOW_PEER_ALL,
            "population": "every customer",
            "churn_auc": _auc(calibration["churned"], -everyone["expected_purchases"]),
            "churn_auc_p_alive": _auc(calibration["churned"], 1 - everyone["p_alive"]),
            "purchases_mae": float(np.mean(np.abs(everyone["expected_purchases"] - calibration["frequency_holdout"]))),
            "purchases_total_error": float(
                everyone["expected_purchases"].sum() / calibration["frequency_holdout"].sum() - 1
            ),
            **_errors(calibration["actual_value"], everyone["expected_value"]),
            "n_train": len(calibration),
            "n_holdout": len(calibration),
            "seconds": seconds_all,
        }
    )

    features = [
        "frequency_cal",
        "recency_cal",
        "T_cal",
        "monetary_value_cal",
        "weeks_since_last_purchase",
        "carried_forward_value",
    ]
    train = calibration[~is_validation]
    started = time.perf_counter()
    churn = HistGradientBoostingClassifier(random_state=RANDOM_STATE).fit(train[features], train["churned"])
    value = HistGradientBoostingRegressor(loss="poisson", random_state=RANDOM_STATE).fit(
        train[features], train["actual_value"]
    )
    ours_seconds = time.perf_counter() - started
    churn_probability = churn.predict_proba(validation[features])[:, list(churn.classes_).index(True)]
    rows.append(
        {
            **base,
            "people": len(calibration),
            "method": CDNOW_OURS,
            "population": "25% of customers",
            "churn_auc": _auc(validation["churned"], churn_probability),
            "brier": float(np.mean((churn_probability - validation["churned"]) ** 2)),
            **_errors(validation["actual_value"], np.clip(value.predict(validation[features]), 0, None)),
            "n_train": n_train,
            "n_holdout": n_holdout,
            "seconds": ours_seconds,
        }
    )
    rows.append(
        {
            **base,
            "people": len(calibration),
            "method": CDNOW_BASELINE,
            "population": "25% of customers",
            "churn_auc": _auc(validation["churned"], validation["weeks_since_last_purchase"]),
            "brier": float(np.mean((train["churned"].mean() - validation["churned"]) ** 2)),
            **_errors(validation["actual_value"], validation["carried_forward_value"]),
            "n_holdout": n_holdout,
        }
    )
    return rows


def run(sizes: list[int]) -> list[dict]:
    rows: list[dict] = []
    for people in sizes:
        rows.extend(_our_data(people))
    rows.extend(_cdnow())
    return rows


if __name__ == "__main__":
    from rich.console import Console

    from benchmarks.run import print_table

    requested = [int(arg.replace("_", "")) for arg in sys.argv[1:]] or [20_000]
    print_table("benchmark: predictive", run(requested), Console())
