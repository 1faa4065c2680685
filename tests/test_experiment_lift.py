"""experiment_lift on generated data: a planted effect is recovered inside its 95% interval, a null
experiment's interval covers zero and says it cannot tell, and every statistic matches a
standard-library reference (tests/experiment_reference.py) within 1e-4. The normal tail behind the
p-values (Abramowitz & Stegun 26.2.17, macros/experiments/statistics.sql) matches scipy, on DuckDB
and Postgres. The model is run by dbt over hand-made upstream tables."""

from __future__ import annotations

import json
import os
import random
import re
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from experiment_reference import assign, compare

AS_OF = datetime(2026, 11, 1)
OUTCOME_DAYS = 30
#: experiment -> (control conversion, treated conversion, control spend per purchase, treated spend)
PLANTED = {"planted": (0.10, 0.14, 50.0, 60.0), "null_effect": (0.12, 0.12, 40.0, 40.0)}
ARMS = [("control", 30), ("treatment", 70)]
MEMBERS = 6000


def _world(seed: int = 7):
    """Members entering over two months, purchases in and around their windows; what each member did
    within its window (the truth the model must find); pending members whose window is still open."""
    rng = random.Random(seed)
    assignments, events, truth = [], [], {name: {"control": [], "treatment": []} for name in PLANTED}
    event_id = 0
    for experiment, (p_c, p_t, spend_c, spend_t) in PLANTED.items():
        for i in range(MEMBERS):
            pid = f"{experiment}_{i:05d}"
            arm = assign(experiment, ARMS, pid)
            pending = i % 50 == 0
            entered = (
                (AS_OF - timedelta(days=5))
                if pending
                else datetime(2026, 8, 1) + timedelta(minutes=rng.randrange(60 * 24 * 60))
            )
            assignments.append((experiment, pid, arm, entered.date(), entered))
            p, spend = (p_c, spend_c) if arm == "control" else (p_t, spend_t)
            converted, revenue = rng.random() < p, 0.0
            if converted:
                for _ in range(1 + (rng.random() < 0.3)):
                    amount = round(rng.expovariate(1 / spend), 2) + 1
                    at = entered + timedelta(minutes=rng.randrange(1, OUTCOME_DAYS * 24 * 60))
                    source = "shop" if rng.random() < 0.7 else "pos"
                    event_id += 1
                    events.append(
                        (
                            pid,
                            source,
                            f"e{event_id}",
                            "order_placed" if source == "shop" else "store_purchase",
                            "completed" if source == "shop" else None,
                            amount,
                            at,
                        )
                    )
                    revenue += amount
            # never counted: before entering, after the window, cancelled orders, refunds at the till
            event_id += 1
            events.append((pid, "shop", f"e{event_id}", "order_placed", "completed", 99.0, entered - timedelta(days=2)))
            event_id += 1
            events.append(
                (
                    pid,
                    "shop",
                    f"e{event_id}",
                    "order_placed",
                    "completed",
                    99.0,
                    entered + timedelta(days=OUTCOME_DAYS, minutes=5),
                )
            )
            event_id += 1
            events.append((pid, "shop", f"e{event_id}", "order_placed", "cancelled", 99.0, entered + timedelta(days=1)))
            event_id += 1
            events.append((pid, "pos", f"e{event_id}", "store_purchase", None, -20.0, entered + timedelta(days=1)))
            if not pending:
                truth[experiment][arm].append((converted, revenue))
    return assignments, events, truth


@pytest.fixture(scope="module")
def lift(tmp_path_factory: pytest.TempPathFactory):
    from cdp.dbt import run_dbt

    path = tmp_path_factory.mktemp("lift") / "warehouse.duckdb"
    assignments, events, truth = _world()
    with duckdb.connect(str(path)) as con:
        con.execute(
            "create table main.experiment_assignments (experiment varchar, profile_id varchar, arm varchar, "
            "entered_on date, entered_at timestamp)"
        )
        con.executemany("insert into main.experiment_assignments values (?, ?, ?, ?, ?)", assignments)
        con.execute(
            "create table main.profile_events (profile_id varchar, source varchar, event_id varchar, "
            "event_type varchar, status varchar, amount decimal(18, 2), occurred_at timestamp)"
        )
        con.executemany("insert into main.profile_events values (?, ?, ?, ?, ?, ?, ?)", events)
    experiments = {name: {"segment": "s", "arms": dict(ARMS), "outcome_days": OUTCOME_DAYS} for name in PLANTED}
    variables = {"experiments": experiments, "as_of": AS_OF.strftime("%Y-%m-%d %H:%M:%S")}
    run_dbt(["run", "--select", "experiment_lift", "--vars", json.dumps(variables)], warehouse=path, echo=False)
    with duckdb.connect(str(path), read_only=True) as con:
        cursor = con.execute("select * from main.experiment_lift")
        names = [d[0] for d in cursor.description]
        rows = {(row[0], row[1]): dict(zip(names, row, strict=True)) for row in cursor.fetchall()}
    return rows, truth


def test_the_planted_effect_is_recovered_within_its_interval(lift):
    rows, _ = lift
    treated = rows[("planted", "treatment")]
    assert treated["conversion_lift_ci_low"] < 0.04 < treated["conversion_lift_ci_high"]
    assert treated["conversion_p_value"] < 0.001 and treated["note"] is None
    planted_relative = 0.14 / 0.10 - 1
    assert treated["conversion_relative_lift_ci_low"] < planted_relative < treated["conversion_relative_lift_ci_high"]
    # revenue per member: p * E[spend per buyer]; buyers make 1.3 purchases of spend + 1 on average
    planted_revenue = 0.14 * 1.3 * 61 - 0.10 * 1.3 * 51
    assert treated["revenue_lift_ci_low"] < planted_revenue < treated["revenue_lift_ci_high"]
    control = rows[("planted", "control")]
    assert control["is_control"] and control["conversion_lift"] is None and control["note"] == "control: the baseline"
    assert control["members_in_window"] + treated["members_in_window"] == MEMBERS // 50


def test_a_null_experiment_covers_zero_and_says_it_cannot_tell(lift):
    rows, _ = lift
    treated = rows[("null_effect", "treatment")]
    assert treated["conversion_lift_ci_low"] < 0 < treated["conversion_lift_ci_high"]
    assert treated["revenue_lift_ci_low"] < 0 < treated["revenue_lift_ci_high"]
    assert treated["conversion_p_value"] > 0.05
    mde = re.search(r"only a conversion lift of ([0-9.]+) points", treated["note"])
    assert treated["note"].startswith("too small to tell") and mde
    assert float(mde.group(1)) == pytest.approx(100 * treated["conversion_mde"], abs=0.05)


@pytest.mark.parametrize("experiment", sorted(PLANTED))
def test_every_statistic_matches_the_reference(lift, experiment: str):
    rows, truth = lift
    expected = compare(truth[experiment]["treatment"], truth[experiment]["control"])
    got = rows[(experiment, "treatment")]
    assert got["members"] == len(truth[experiment]["treatment"])
    assert rows[(experiment, "control")]["members"] == len(truth[experiment]["control"])
    for name, value in vars(expected).items():
        assert got[name] == pytest.approx(value, abs=1e-4, rel=1e-6), name


Z_VALUES = [0.0, 0.1, 0.5, 1.0, 1.644854, 1.959964, 2.5, 3.0, 3.890592, 5.0, 8.0, 40.0, -1.3, -2.7]


def _p_value_sql() -> str:
    """The two-sided p-value macro, compiled by dbt over a column z."""
    from cdp.dbt import run_dbt

    values = ", ".join(f"(cast({z} as double precision))" for z in Z_VALUES)
    inline = f"select z, {{{{ cdp.two_sided_p_value('z') }}}} as p from (values {values}) as t (z) order by z"
    output = run_dbt(["compile", "--quiet", "--inline", inline], echo=False)
    return output[output.index("select") :].strip()


def test_the_sql_normal_tail_matches_scipy_on_duckdb_and_postgres(postgres_server):
    from scipy.stats import norm
    from sync_engines import postgres_database

    sql = _p_value_sql()
    expected = {z: 2 * norm.sf(abs(z)) for z in Z_VALUES}
    with duckdb.connect() as con:
        got = dict(con.execute(sql).fetchall())
    with postgres_database(postgres_server) as location, location.open() as pg:
        got_pg = {float(z): float(p) for z, p in pg.fetch(sql)}
    for z in Z_VALUES:
        assert got[z] == pytest.approx(expected[z], abs=1e-6), z
        assert got_pg[z] == pytest.approx(expected[z], abs=1e-6), z


def test_cdp_lift_prints_each_arm_as_the_model_measured_it(built_warehouse: Path):
    """The sample's churn sync holds 10% out: `cdp lift` shows that experiment's arms from
    experiment_lift, and an unknown name is refused naming what exists."""
    import subprocess
    import sys

    with duckdb.connect(str(built_warehouse), read_only=True) as con:
        arms = {
            arm: (members, in_window)
            for arm, members, in_window in con.execute(
                "select arm, members, members_in_window from main.experiment_lift "
                "where experiment = 'churn_risk_to_webhook'"
            ).fetchall()
        }
    # the sample's as_of is before its build: every member is still inside the outcome window
    assert set(arms) == {"control", "treatment"} and arms["control"][1] > 0

    def lift(name: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "cli.main", "lift", name, "--warehouse", str(built_warehouse)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "COLUMNS": "250"},
        )

    shown = lift("churn_risk_to_webhook")
    assert shown.returncode == 0, shown.stderr
    assert "Experiment churn_risk_to_webhook" in shown.stdout
    for arm, (members, in_window) in arms.items():
        assert re.search(rf"^\s*{arm}\s+{members:,}\s+{in_window:,}\s", shown.stdout, re.MULTILINE), shown.stdout
    assert "treatment: too small to tell" in shown.stdout  # the note says why there is no estimate yet
    unknown = lift("no_such_experiment")
    assert unknown.returncode == 1 and "no_such_experiment" in unknown.stderr
