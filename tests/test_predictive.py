"""Predictive attributes and clusters (dbt_project/models/predictive/) on the generated sample.

Read-only checks use the session's built warehouse; the tests marked slow copy it and
rebuild part of it (no leakage, stable rebuilds) or build a tiny world of their own.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from raw_data import write_raw
from sklearn.metrics import mean_absolute_error, roc_auc_score

from cdp.dbt import run_dbt
from cdp.predictive.scores import FEATURES
from cdp.warehouse import connect

AS_OF = datetime(2026, 11, 1)
CUTOFF = AS_OF - timedelta(days=90)

PURCHASE = """(
    (source = 'shop' and event_type = 'order_placed' and status = 'completed')
    or (source = 'pos' and event_type = 'store_purchase' and amount > 0)
)"""


def rows(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    with connect(path, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def nearly(value):
    """Floats compared to 9 significant digits, everything else exactly."""
    return float(f"{value:.9g}") if isinstance(value, float) else value


def copy_of(warehouse: Path, tmp_path: Path) -> Path:
    target = tmp_path / "warehouse.duckdb"
    shutil.copy(warehouse, target)
    return target


# --- profile_scores -----------------------------------------------------------------------


def test_every_profile_is_scored_once(built_warehouse: Path):
    missing = rows(
        built_warehouse,
        "select count(*) from profiles where profile_id not in (select profile_id from profile_scores)",
    )
    counts = rows(built_warehouse, "select count(*), count(distinct profile_id) from profile_scores")
    (profiles,) = rows(built_warehouse, "select count(*) from profiles")[0]
    assert missing == [(0,)]
    assert counts == [(profiles, profiles)]


def test_customers_get_a_churn_probability_and_never_buyers_none(built_warehouse: Path):
    """is_customer is 'bought before as_of' (checked against the raw event stream); customers
    get a probability in [0, 1], people who never bought get NULL; everyone gets a
    non-negative expected value."""
    (summary,) = rows(
        built_warehouse,
        f"""
        with buyers as (
            select distinct profile_id from profile_events
            where {PURCHASE} and occurred_at < timestamp '{AS_OF}'
        )
        select
            count(*) filter (where scores.is_customer <> (buyers.profile_id is not null)),
            count(*) filter (where scores.is_customer and scores.churn_probability is null),
            count(*) filter (where not scores.is_customer and scores.churn_probability is not null),
            count(*) filter (where scores.churn_probability < 0 or scores.churn_probability > 1),
            count(*) filter (where scores.expected_value_90d is null or scores.expected_value_90d < 0),
            count(*) filter (where scores.is_customer),
            count(*) filter (where not scores.is_customer),
            count(distinct scores.scored_at),
            min(scores.scored_at)
        from profile_scores as scores
        left join buyers on buyers.profile_id = scores.profile_id
        """,
    )
    wrong_flag, customers_unscored, never_buyers_scored, out_of_range, bad_value, customers, others, stamps, at = (
        summary
    )
    assert (wrong_flag, customers_unscored, never_buyers_scored, out_of_range, bad_value) == (0, 0, 0, 0, 0)
    assert customers > 500 and others > 100
    assert (stamps, at) == (1, AS_OF)


def test_recent_buyers_score_lower_churn_and_higher_value_than_lapsed_ones(built_warehouse: Path):
    (recent, lapsed) = rows(
        built_warehouse,
        f"""
        with last_purchase as (
            select profile_id, max(occurred_at) as at from profile_events
            where {PURCHASE} and occurred_at < timestamp '{AS_OF}'
            group by profile_id
        )
        select
            date_diff('day', last_purchase.at, timestamp '{AS_OF}') <= 30 as is_recent,
            avg(scores.churn_probability),
            avg(scores.expected_value_90d),
            count(*)
        from profile_scores as scores
        inner join last_purchase using (profile_id)
        where date_diff('day', last_purchase.at, timestamp '{AS_OF}') <= 30
            or date_diff('day', last_purchase.at, timestamp '{AS_OF}') > 365
        group by 1
        order by 1 desc
        """,
    )
    assert recent[0] and not lapsed[0]
    assert recent[3] > 30 and lapsed[3] > 30
    assert recent[1] < lapsed[1] - 0.2, (recent, lapsed)
    assert recent[2] > 2 * lapsed[2], (recent, lapsed)


# --- predictive_model_quality --------------------------------------------------------------


def test_model_quality_has_each_metric_beside_a_baseline(built_warehouse: Path):
    quality = {
        (model, metric): (value, baseline_name, baseline_value, n_train, n_holdout, as_of)
        for model, metric, value, baseline_name, baseline_value, n_train, n_holdout, as_of in rows(
            built_warehouse,
            "select model, metric, value, baseline_name, baseline_value, n_train, n_holdout, as_of "
            "from predictive_model_quality",
        )
    }
    assert set(quality) == {
        ("churn", "auc"),
        ("churn", "brier"),
        ("value_90d", "mae"),
        ("value_90d", "rmse"),
        ("value_90d", "relative_total_error"),
    }
    for (model, metric), (value, baseline_name, baseline_value, n_train, n_holdout, as_of) in quality.items():
        assert value is not None and baseline_value is not None and baseline_name, (model, metric)
        assert n_train > n_holdout > 50, (model, metric, n_train, n_holdout)
        assert as_of == AS_OF

    auc, baseline_name, baseline_auc, *_ = quality[("churn", "auc")]
    assert "recency" in baseline_name
    assert 0.7 < auc <= 1.0, auc
    assert 0.5 < baseline_auc < 1.0, baseline_auc
    assert auc > baseline_auc, (auc, baseline_auc)
    brier, _, baseline_brier, *_ = quality[("churn", "brier")]
    assert 0 <= brier < baseline_brier
    mae, _, baseline_mae, *_ = quality[("value_90d", "mae")]
    assert 0 < mae < baseline_mae


def test_model_quality_is_measured_on_held_out_profiles_and_matches_sklearn(built_warehouse: Path):
    """The figures come from the validation split only (profiles the models never trained
    on), and the SQL AUC / MAE agree with scikit-learn on the same rows."""
    validation = rows(
        built_warehouse,
        """
        select
            training.is_validation,
            training.churned,
            training.recency_days,
            greatest(training.value_next_90d, 0),
            predictions.churn_probability,
            predictions.expected_value_90d
        from intermediate.int_predictive__predictions as predictions
        inner join intermediate.int_predictive__training_set as training using (profile_id)
        where predictions.scored_set = 'validation'
        """,
    )
    (n_train_customers, n_validation_customers) = rows(
        built_warehouse,
        "select count(*) filter (where not is_validation), count(*) filter (where is_validation) "
        "from intermediate.int_predictive__training_set where purchases > 0",
    )[0]
    assert validation and all(row[0] for row in validation)
    customers = [row for row in validation if row[1] is not None]
    assert len(customers) == n_validation_customers

    quality = {
        (model, metric): (value, baseline, n_train, n_holdout)
        for model, metric, value, baseline, n_train, n_holdout in rows(
            built_warehouse,
            "select model, metric, value, baseline_value, n_train, n_holdout from predictive_model_quality",
        )
    }
    auc, baseline_auc, n_train, n_holdout = quality[("churn", "auc")]
    assert (n_train, n_holdout) == (n_train_customers, n_validation_customers)
    labels = [row[1] for row in customers]
    assert auc == pytest.approx(roc_auc_score(labels, [row[4] for row in customers]), abs=1e-9)
    assert baseline_auc == pytest.approx(roc_auc_score(labels, [row[2] for row in customers]), abs=1e-9)

    mae, _, _, value_holdout = quality[("value_90d", "mae")]
    assert value_holdout == len(validation)
    assert mae == pytest.approx(
        mean_absolute_error([float(row[3]) for row in validation], [row[5] for row in validation]), rel=1e-9
    )


@pytest.mark.slow
def test_features_at_the_cutoff_ignore_later_events(built_warehouse: Path, tmp_path: Path):
    """No leakage: deleting every event from the cutoff on leaves the calibration features
    exactly as they were (only the labels, which read the window, change)."""
    copy = copy_of(built_warehouse, tmp_path)
    feature_list = ", ".join(FEATURES)
    query = f"select profile_id, {feature_list} from intermediate.int_predictive__training_set order by profile_id"
    before = rows(copy, query)
    (labelled_before,) = rows(
        copy, "select count(*) from intermediate.int_predictive__training_set where purchases_next_90d > 0"
    )[0]
    (cutoff,) = rows(copy, "select distinct feature_cutoff from intermediate.int_predictive__training_set")[0]
    assert cutoff == CUTOFF

    with connect(copy) as con:
        ((deleted,),) = con.execute("delete from profile_events where occurred_at >= ?", [cutoff]).fetchall()
    assert deleted > 1000
    run_dbt(["run", "--select", "int_predictive__training_set"], warehouse=copy, echo=False)

    after = rows(copy, query)
    (labelled_after,) = rows(
        copy, "select count(*) from intermediate.int_predictive__training_set where purchases_next_90d > 0"
    )[0]
    assert labelled_before > 100 and labelled_after == 0
    assert len(after) == len(before) > 1000
    assert after == before


# --- clusters ------------------------------------------------------------------------------


def test_every_cluster_is_described(built_warehouse: Path):
    assigned = dict(rows(built_warehouse, "select cluster_id, count(*) from profile_clusters group by cluster_id"))
    descriptions = rows(
        built_warehouse,
        "select cluster_id, cluster_name, description, profiles, share, k, silhouette, overall_silhouette, "
        "selection_criterion, mean_expected_value_90d from cluster_descriptions order by cluster_id",
    )
    (profiles,) = rows(built_warehouse, "select count(*) from profiles")[0]
    assert sum(assigned.values()) == profiles
    assert {row[0] for row in descriptions} == set(assigned) == set(range(1, len(descriptions) + 1))

    k = descriptions[0][5]
    assert 3 <= k <= 8 and len(descriptions) == k
    assert len({row[1] for row in descriptions}) == k  # names unique
    for cluster_id, name, description, size, share, _, silhouette, overall, criterion, _ in descriptions:
        assert size == assigned[cluster_id]
        assert share == pytest.approx(size / profiles)
        assert name and description.startswith(f"{size} profiles (")
        assert -1 <= silhouette <= 1 and 0 < overall <= 1
        assert "silhouette" in criterion and f"k={k}:" in criterion
    expected_values = [row[9] for row in descriptions]
    assert expected_values == sorted(expected_values, reverse=True)  # ids ordered by expected value


def test_cluster_names_agree_with_their_figures(built_warehouse: Path):
    descriptions = rows(
        built_warehouse,
        "select cluster_name, buyer_share, median_recency_days, store_purchase_share from cluster_descriptions",
    )
    assert any(name.startswith("non-buyers") for name, *_ in descriptions)
    assert any(not name.startswith("non-buyers") for name, *_ in descriptions)
    for name, buyer_share, median_recency, store_share in descriptions:
        assert name.startswith("non-buyers") == (buyer_share < 0.5), name
        if ", recent" in name:
            assert median_recency <= 90, name
        if ", lapsed" in name:
            assert median_recency > 365, name
        assert ("in-store" in name) == (store_share is not None and store_share >= 0.5), name


@pytest.mark.slow
def test_rebuilding_unchanged_data_gives_the_same_clusters_and_scores(built_warehouse: Path, tmp_path: Path):
    copy = copy_of(built_warehouse, tmp_path)
    queries = {
        "clusters": "select profile_id, cluster_id, cluster_name from profile_clusters order by profile_id",
        "descriptions": "select * exclude (clustered_at) from cluster_descriptions order by cluster_id",
        "scores": "select * from profile_scores order by profile_id",
        "quality": "select * from predictive_model_quality order by model, metric",
    }
    first = {name: rows(copy, sql) for name, sql in queries.items()}
    run_dbt(["run", "--select", "+profile_clusters", "+predictive_model_quality"], warehouse=copy, echo=False)
    second = {name: rows(copy, sql) for name, sql in queries.items()}
    assert len(first["clusters"]) > 1000
    # assignments and scores are identical; SQL averages of doubles may differ in the last
    # bits (the warehouse sums in parallel, in no fixed order)
    assert second["clusters"] == first["clusters"]
    assert second["scores"] == first["scores"]
    for name in ("descriptions", "quality"):
        assert len(second[name]) == len(first[name]), name
        for again, before in zip(second[name], first[name], strict=False):
            assert [nearly(value) for value in again] == [nearly(value) for value in before], name


# --- small worlds ---------------------------------------------------------------------------


@pytest.mark.slow
def test_a_warehouse_with_a_handful_of_people_still_builds(tmp_path: Path):
    """Too little to learn from: prior models and one cluster, never a failed build."""
    t = datetime(2026, 3, 1)
    path = tmp_path / "tiny.duckdb"
    write_raw(
        path,
        {
            "shop_customers": [
                {"customer_id": "T-1", "email": "t1@example.com", "country": "US", "created_at": t},
                {"customer_id": "T-2", "email": "t2@example.com", "country": "US", "created_at": t},
            ],
            "shop_orders": [
                {
                    "order_id": "TO-1",
                    "customer_id": "T-1",
                    "ordered_at": t + timedelta(days=1),
                    "status": "completed",
                    "total_amount": 40,
                    "currency": "USD",
                },
                {
                    "order_id": "TO-2",
                    "customer_id": "T-1",
                    "ordered_at": t + timedelta(days=200),
                    "status": "completed",
                    "total_amount": 60,
                    "currency": "USD",
                },
            ],
        },
    )
    run_dbt(
        [
            "build",
            "--select",
            "+profile_scores",
            "+profile_clusters",
            "+predictive_model_quality",
            "--indirect-selection",
            "cautious",
        ],
        warehouse=path,
        echo=False,
    )
    scores = rows(path, "select is_customer, churn_probability, expected_value_90d from profile_scores order by 1")
    assert [row[0] for row in scores] == [False, True]
    assert scores[0][1] is None
    assert all(value is None or value >= 0 for _, _, value in scores)
    assert rows(path, "select k, profiles, cluster_name from cluster_descriptions") == [(1, 2, "low value, recent")]
    assert rows(path, "select count(*) from predictive_model_quality") == [(5,)]


# --- how the dbt models read their inputs -----------------------------------------------------


def _feature_tables(con) -> None:
    """Synthetic training and scoring sets with the feature tables' types (BIGINT with NULLs, DECIMAL,
    BOOLEAN), rows stored out of profile_id order."""
    money = {"net_value", "net_value_90d", "net_value_365d", "avg_order_value"}
    nullable = {"recency_days", "days_since_first_purchase", "avg_order_value"}

    def feature(name: str, salt: int) -> str:
        if name == "has_opted_out_of_email":
            return f"hash(i, {salt}) % 7 = 0 as {name}"
        if name == "purchases":
            return f"cast(hash(i, {salt}) % 4 as bigint) as {name}"
        value = f"hash(i, {salt}) % 5000 / 7.0" if name in money else f"hash(i, {salt}) % 90"
        value = f"cast({value} as {'decimal(18, 2)' if name in money else 'bigint'})"
        return (
            f"case when hash(i, {salt}) % 5 = 0 then null else {value} end as {name}"
            if name in nullable
            else f"{value} as {name}"
        )

    columns = ",\n".join(feature(name, salt) for salt, name in enumerate(FEATURES))
    rows = "select 'p_' || lpad(cast((i * 7919) % 1000 as varchar), 4, '0') as profile_id, i from range(1000) as t(i)"
    con.execute(f"create table scoring as select profile_id, {columns} from ({rows})")
    con.execute(
        f"""
        create table training as
        select
            *,
            cast(hash(i, 'value') % 9000 / 100.0 - 10 as decimal(18, 2)) as value_next_90d,
            case when purchases > 0 then hash(i, 'churn') % 3 = 0 end as churned,
            i % 4 = 0 as is_validation
        from (select profile_id, i, {columns} from ({rows}) where i < 800)
        """
    )


def test_the_models_arrow_inputs_and_chunked_scoring_give_the_df_inputs_scores(monkeypatch):
    """int_predictive__predictions reads its inputs as Arrow-backed frames (cdp/predictive/inputs.py)
    and scores SCORING_CHUNK_ROWS rows at a time, to spare memory: the same scores, bit for bit, as
    from ``.df()`` frames scored at once (what the predictive step reads on DuckDB)."""
    import duckdb
    import pandas as pd

    from cdp.predictive import scores
    from cdp.predictive.inputs import frame

    con = duckdb.connect()
    _feature_tables(con)
    training_columns = [*scores.TRAINING_COLUMNS, *FEATURES]
    expected = scores.predictions(con.table("training").df(), con.table("scoring").df())

    monkeypatch.setattr(scores, "SCORING_CHUNK_ROWS", 64)
    training = frame(con.table("training"), training_columns)
    current = frame(con.table("scoring"), ["profile_id", *FEATURES])
    assert list(training.columns) == training_columns
    assert training["profile_id"].is_monotonic_increasing
    assert training["net_value"].to_numpy("float64", na_value=float("nan")).tobytes() == (
        con.table("training").order("profile_id").df()["net_value"].to_numpy("float64").tobytes()
    )
    got = scores.predictions(training, current)

    assert (got["scored_set"] == "current").sum() == 1000 and got["churn_probability"].notna().any()
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_exact=True)


def test_each_k_is_started_on_a_sample_and_converged_on_every_profile():
    """cdp/predictive/clusters.py fits each candidate k on FIT_SAMPLE profiles (ten starts) and
    then converges it over every profile. On data with one best partition that is the partition
    ten full k-means runs find; with no more than FIT_SAMPLE profiles, it is their very labels."""
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    from cdp.predictive import clusters

    rng = np.random.default_rng(7)
    centres = np.array([[0, 0, 0], [6, 0, 0], [0, 6, 0], [0, 0, 6]], dtype="float64")
    truth = rng.integers(0, 4, size=80_000)
    x = centres[truth] + rng.normal(size=(len(truth), 3))
    order = np.random.default_rng(clusters.RANDOM_STATE).permutation(len(x))
    fit_rows, sample = np.sort(order[: clusters.FIT_SAMPLE]), np.sort(order[:2_000])
    assert len(fit_rows) < len(x)

    labels, silhouettes = clusters.fit_k(x, fit_rows, sample, 4)
    direct = KMeans(n_clusters=4, n_init=10, random_state=clusters.RANDOM_STATE).fit(x)
    assert adjusted_rand_score(labels, direct.labels_) == 1.0
    assert adjusted_rand_score(labels, truth) > 0.99
    assert len(silhouettes) == len(sample) and silhouettes.mean() > 0.5

    small = x[:3_000]
    labels, _ = clusters.fit_k(small, np.arange(len(small)), np.arange(500), 4)
    assert (labels == KMeans(n_clusters=4, n_init=10, random_state=clusters.RANDOM_STATE).fit(small).labels_).all()
