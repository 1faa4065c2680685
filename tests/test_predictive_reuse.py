"""The predictive models copy their table when nothing they read changed (cdp/predictive/reuse.py).

Each test runs the two Python models with dbt on a copy of the built sample. A score changed by hand
in int_predictive__predictions shows which path ran: a copy keeps it, a fit puts the fitted value back.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdp.dbt import run_dbt
from cdp.predictive.reuse import FITTED_INPUTS, computed_unless_unchanged, relation_fingerprint
from cdp.predictive.scores import FEATURES, TRAINING_COLUMNS, predictions

PREDICTIONS = "intermediate.int_predictive__predictions"
BOOKKEEPING = f"intermediate.{FITTED_INPUTS}"
PYTHON_MODELS = ["int_predictive__predictions", "int_predictive__cluster_assignments"]
#: A value no fit gives (expected values are floored at 0).
TAMPERED = -1.0


def _run_models(path: Path, *args: str) -> None:
    run_dbt(["run", "--select", *PYTHON_MODELS, *args], warehouse=path, echo=False)


def _rows(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _tamper(path: Path) -> tuple[str, float]:
    """Set one profile's current expected value to TAMPERED; return (profile_id, the fitted value)."""
    with duckdb.connect(str(path)) as con:
        profile_id, fitted = con.execute(
            f"select profile_id, expected_value_90d from {PREDICTIONS} "
            "where scored_set = 'current' and expected_value_90d > 0 order by profile_id limit 1"
        ).fetchone()
        con.execute(
            f"update {PREDICTIONS} set expected_value_90d = ? where scored_set = 'current' and profile_id = ?",
            [TAMPERED, profile_id],
        )
    return profile_id, fitted


def _expected_value(path: Path, profile_id: str) -> float:
    return _rows(
        path,
        f"select expected_value_90d from {PREDICTIONS} where scored_set = 'current' and profile_id = ?",
        [profile_id],
    )[0][0]


def _bookkeeping(path: Path) -> dict[str, tuple]:
    return {
        model: (fingerprint, pending)
        for model, fingerprint, pending in _rows(
            path, f"select model, fingerprint, pending_fingerprint from {BOOKKEEPING}"
        )
    }


@pytest.fixture
def warehouse(built_warehouse: Path, tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(built_warehouse, path)
    return path


def test_a_build_records_what_each_model_was_computed_from(built_warehouse: Path):
    kept = _bookkeeping(built_warehouse)
    assert set(kept) == set(PYTHON_MODELS)
    for fingerprint, pending in kept.values():
        assert fingerprint is not None and len(fingerprint) == 64 and pending is None


def test_unchanged_inputs_copy_the_table_instead_of_fitting_again(warehouse: Path):
    profile_id, _ = _tamper(warehouse)
    before = _bookkeeping(warehouse)

    _run_models(warehouse)

    assert _expected_value(warehouse, profile_id) == TAMPERED  # copied, not fitted
    assert _bookkeeping(warehouse)["int_predictive__predictions"] == before["int_predictive__predictions"]
    # the clusters read the (tampered) predictions: their input changed, so they were fitted again
    assert (
        _bookkeeping(warehouse)["int_predictive__cluster_assignments"] != before["int_predictive__cluster_assignments"]
    )


def test_a_changed_feature_fits_again(warehouse: Path):
    profile_id, fitted = _tamper(warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "update intermediate.int_predictive__scoring_set set web_events_30d = web_events_30d + 1 "
            "where profile_id = (select max(profile_id) from intermediate.int_predictive__scoring_set)"
        )

    _run_models(warehouse)

    # the training set is unchanged, so the same fits score the tampered profile as before
    assert _expected_value(warehouse, profile_id) == fitted


def test_full_refresh_fits_again(warehouse: Path):
    profile_id, fitted = _tamper(warehouse)

    _run_models(warehouse, "--full-refresh")

    assert _expected_value(warehouse, profile_id) == fitted


class _This(SimpleNamespace):
    """dbt.this in a Python model: the parts, and the quoted name as its repr."""

    def __repr__(self) -> str:
        return PREDICTIONS


def test_a_build_that_stopped_after_the_model_ran_fits_again(warehouse: Path):
    """The model ran (and compared, and recorded what it read) but the build stopped before the post-hook:
    the table may or may not have been replaced, so the next build must not vouch for it."""
    profile_id, fitted = _tamper(warehouse)
    with duckdb.connect(str(warehouse)) as con:
        database = con.execute("select current_database()").fetchall()[0][0]
        this = _This(database=database, schema="intermediate", identifier="int_predictive__predictions")
        inputs = [
            (con.table("intermediate.int_predictive__training_set"), [*TRAINING_COLUMNS, *FEATURES]),
            (con.table("intermediate.int_predictive__scoring_set"), ["profile_id", *FEATURES]),
        ]
        copied = computed_unless_unchanged(SimpleNamespace(this=this), con, predictions, inputs)
        assert isinstance(copied, duckdb.DuckDBPyRelation)  # unchanged: it would have copied
    fingerprint, pending = _bookkeeping(warehouse)["int_predictive__predictions"]
    assert fingerprint is None and pending is not None

    _run_models(warehouse)

    assert _expected_value(warehouse, profile_id) == fitted
    assert _bookkeeping(warehouse)["int_predictive__predictions"] == (pending, None)


def test_a_dropped_table_is_fitted_again(warehouse: Path):
    with duckdb.connect(str(warehouse)) as con:
        con.execute(f"drop table {PREDICTIONS} cascade")

    _run_models(warehouse)

    assert _rows(warehouse, f"select count(*) from {PREDICTIONS}")[0][0] > 0


# --- the fingerprint of one input -----------------------------------------------------------

ROWS = st.lists(
    st.tuples(st.integers(0, 10_000), st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False))),
    min_size=1,
    max_size=30,
    unique_by=lambda row: row[0],
)


def _fingerprint(con: duckdb.DuckDBPyConnection, rows: list[tuple], column_type: str = "double") -> str:
    con.execute(f"create or replace table t (profile_id integer, value {column_type}, unread varchar)")
    if rows:
        con.executemany("insert into t values (?, ?, 'x')", rows)
    return relation_fingerprint(con.table("t"), ["profile_id", "value"])


@settings(max_examples=60, deadline=None)
@given(rows=ROWS, data=st.data())
def test_the_fingerprint_ignores_row_order_and_sees_any_change(rows: list[tuple], data):
    con = duckdb.connect()
    original = _fingerprint(con, rows)
    assert _fingerprint(con, list(reversed(rows))) == original
    assert _fingerprint(con, data.draw(st.permutations(rows))) == original

    changed = list(rows)
    index = data.draw(st.integers(0, len(rows) - 1))
    profile_id, value = changed[index]
    changed[index] = (profile_id, 1.5 if value is None else None)  # a value set, or cleared
    assert _fingerprint(con, changed) != original
    assert _fingerprint(con, rows[:index] + rows[index + 1 :]) != original  # a row removed
    assert _fingerprint(con, [*rows, (10_001, value)]) != original  # a row added


def test_the_fingerprint_covers_the_columns_read_and_their_types_only():
    con = duckdb.connect()
    rows = [(1, 2.0), (2, None)]
    as_decimal = _fingerprint(con, rows, "decimal(18, 2)")
    assert as_decimal != _fingerprint(con, rows)
    con.execute("update t set unread = 'y'")
    assert relation_fingerprint(con.table("t"), ["profile_id", "value"]) == _fingerprint(con, rows)
    with pytest.raises(ValueError, match=r"columns \['missing'\]"):
        relation_fingerprint(con.table("t"), ["profile_id", "missing"])
