"""Experiments: declarations checked by file and field, the arm rule's properties (deterministic,
shares within sampling error, stable as the segment changes, monotonic when control grows), the
dbt model assigning exactly what the rule says, and syncs that never send control."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from experiment_reference import assign, bucket
from hypothesis import given, settings
from hypothesis import strategies as st

from cdp.experiments import Experiment, ExperimentError, load_experiments, parse_experiment

ARMS = [("control", 10), ("a", 45), ("b", 45)]


# -- declarations -------------------------------------------------------------------------------


def _project(tmp_path: Path, experiments_yaml: str, extra: str = "") -> Path:
    (tmp_path / "dbt_project.yml").write_text(f"name: x\nvars:\n  experiments:\n{experiments_yaml}{extra}")
    return tmp_path


def test_a_declared_experiment_reads_back_with_control_first(tmp_path: Path):
    project = _project(tmp_path, "    w:\n      segment: lapsed\n      arms: {a: 45, control: 10, b: 45}\n")
    assert load_experiments(project) == {
        "w": Experiment(name="w", segment="lapsed", arms=(("control", 10), ("a", 45), ("b", 45)), outcome_days=30)
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"segment": "s", "arms": {"control": 10, "t": 85}},
            r"vars\.experiments\.w\.arms: shares must sum to 100, they sum to 95",
        ),
        ({"segment": "s", "arms": {"a": 50, "b": 50}}, r"w\.arms: needs exactly one arm named 'control'"),
        (
            {"segment": "s", "arms": {"control": 0, "t": 100}},
            r"w\.arms\.control: a share must be a whole percent from 1 to 99",
        ),
        ({"segment": "s", "arms": {"control": 10.5, "t": 89.5}}, r"w\.arms\.control: a share must be a whole percent"),
        ({"arms": {"control": 10, "t": 90}}, r"w\.segment: is required"),
        ({"segment": "s"}, r"w\.arms: is required"),
        ({"segment": "s", "arms": {"control": 10, "t": 90}, "sheres": 1}, r"w\.sheres: is not an experiment setting"),
        ({"segment": "s", "arms": {"control": 10, "T": 90}}, r"w\.arms\.T: an arm name must be lower-case"),
        ({"segment": "s", "arms": {"control": 10, "t": 90}, "outcome_days": 0}, r"w\.outcome_days: .*from 1 to 365"),
    ],
)
def test_a_bad_experiment_is_refused_naming_the_file_and_field(spec, message):
    with pytest.raises(ExperimentError, match=message):
        parse_experiment("w", spec, where="dbt_project.yml: vars.experiments.w")


def test_duplicate_names_and_the_reserved_name_are_refused(tmp_path: Path):
    twice = "    w:\n      segment: s\n      arms: {control: 10, t: 90}\n    w:\n      segment: s\n      arms: {control: 20, t: 80}\n"
    with pytest.raises(ExperimentError, match=r"dbt_project\.yml: line 7: 'w' is written twice"):
        load_experiments(_project(tmp_path, twice))
    arm_twice = "    w:\n      segment: s\n      arms: {control: 10, t: 45, t: 45}\n"
    with pytest.raises(ExperimentError, match=r"'t' is written twice"):
        load_experiments(_project(tmp_path, arm_twice))
    reserved = "    global_holdout:\n      segment: s\n      arms: {control: 10, t: 90}\n"
    with pytest.raises(ExperimentError, match=r"experiments\.global_holdout: 'global_holdout' is the global holdout"):
        load_experiments(_project(tmp_path, reserved))
    bad_global = _project(tmp_path, "    {}\n", "  global_holdout_percent: 100\n")
    with pytest.raises(ExperimentError, match=r"vars\.global_holdout_percent: must be a whole percent from 0 to 99"):
        load_experiments(bad_global)


def test_a_sync_naming_an_experiment_is_checked_against_it():
    from sync_world import DESTINATIONS, SEGMENT

    from destinations.definitions import SyncDefinitionError, parse_sync_definition

    experiments = {"w": Experiment("w", SEGMENT, (("control", 10), ("a", 45), ("b", 45)), 30)}
    base = {
        "segment": SEGMENT,
        "destination": "hook",
        "mode": "mirror",
        "key": "email",
        "identifiers": {"email": "email"},
    }

    def parse(**spec):
        return parse_sync_definition(
            {"name": "s", "depends_on": {}}, base | spec, DESTINATIONS, experiments=experiments
        )

    assert parse(experiment="w").arms == ("a", "b")
    assert parse(experiment="w", arms=["b"], fields={"variant": "experiment_arm"}).arms == ("b",)
    for spec, message in [
        (
            {"experiment": "nope"},
            r"sync 's': field 'experiment': unknown experiment 'nope' \(dbt_project\.yml vars\.experiments: w\)",
        ),
        (
            {"experiment": "w", "segment": "other"},
            r"field 'experiment': experiment 'w' splits segment 'test_audience', but this sync sends 'other'",
        ),
        ({"experiment": "w", "arms": ["control"]}, r"field 'arms': 'control' is never sent"),
        ({"experiment": "w", "arms": ["c"]}, r"field 'arms': experiment 'w' has no arm 'c' \(arms: a, b\)"),
        (
            {"experiment": "w", "holdout_percent": 10},
            r"field 'experiment': .*either by holdout_percent or by an experiment",
        ),
        ({"arms": ["a"]}, r"field 'arms': names arms of an experiment: set experiment too"),
        (
            {"fields": {"variant": "experiment_arm"}},
            r"field 'fields\.variant': 'experiment_arm' is the member's experiment arm",
        ),
    ]:
        with pytest.raises(SyncDefinitionError, match=message):
            parse(**spec)


# -- the rule's properties (the reference; the SQL is held to it below) --------------------------

PROFILE_IDS = st.text(alphabet="abcdef0123456789_p", min_size=1, max_size=24)


@given(st.lists(PROFILE_IDS, min_size=1, max_size=50, unique=True))
def test_arms_are_deterministic_and_do_not_depend_on_who_else_is_in_the_segment(ids):
    alone = {pid: assign("w", ARMS, pid) for pid in ids}
    together = {pid: assign("w", ARMS, pid) for pid in reversed(ids + ["someone_else"])}
    assert all(alone[pid] == together[pid] for pid in ids)


@settings(max_examples=200)
@given(st.integers(1, 98), st.integers(1, 98), st.lists(PROFILE_IDS, min_size=1, max_size=30, unique=True))
def test_raising_control_only_moves_people_into_control(before, after, ids):
    low, high = sorted((before, after))
    if low == high:
        return
    small = [("control", low), ("treatment", 100 - low)]
    large = [("control", high), ("treatment", 100 - high)]
    for pid in ids:
        was, now = assign("e", small, pid), assign("e", large, pid)
        assert was == now or now == "control", (pid, was, now)


@settings(max_examples=200)
@given(
    st.lists(st.integers(1, 5), min_size=2, max_size=4),
    st.data(),
    st.lists(PROFILE_IDS, min_size=1, max_size=30, unique=True),
)
def test_with_several_arms_raising_control_moves_nobody_between_the_others(weights, data, ids):
    """Arms that keep their proportions (45/45 -> 40/40) while control grows exchange nobody."""
    largest = 99 // sum(weights)
    if largest < 2:
        return
    before = data.draw(st.integers(2, largest))
    after = data.draw(st.integers(1, before - 1))
    names = [f"arm{i}" for i in range(len(weights))]

    def arms(scale: int) -> list[tuple[str, int]]:
        return [("control", 100 - scale * sum(weights))] + [(n, w * scale) for n, w in zip(names, weights, strict=True)]

    for pid in ids:
        was, now = assign("e", arms(before), pid), assign("e", arms(after), pid)
        assert was == now or now == "control", (pid, was, now)


def test_shares_are_within_sampling_error():
    n = 20_000
    counts = {name: 0 for name, _ in ARMS}
    for i in range(n):
        counts[assign("share_check", ARMS, f"p_{i:06d}")] += 1
    for name, share in ARMS:
        p = share / 100
        bound = 4 * math.sqrt(n * p * (1 - p))  # four binomial standard deviations
        assert abs(counts[name] - n * p) < bound, (name, counts[name], n * p, bound)


def test_a_sync_holdout_is_the_control_arm_of_its_experiment():
    """desired.sql's holdout (bucket mod 100 < h) and the experiment rule agree for every profile."""
    for i in range(2000):
        pid = f"p{i}"
        assert (bucket(f"churn:{pid}", 100) < 10) == (
            assign("churn", [("control", 10), ("treatment", 90)], pid) == "control"
        )


# -- the dbt model assigns what the rule says ---------------------------------------------------

EXPERIMENTS_VAR = {
    "lapsed_test": {"segment": "lapsed_customers", "arms": {"control": 10, "email": 45, "ads": 45}},
    "churn_test": {"segment": "high_churn_risk", "arms": {"treatment": 80, "control": 20}, "outcome_days": 14},
}


@pytest.fixture(scope="module")
def assigned(built_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The built sample twice over: once as built (no experiments but the churn sync's holdout), once
    with two declared experiments and a 5% global holdout (only the two experiment views rebuilt)."""
    from cdp.dbt import run_dbt

    path = tmp_path_factory.mktemp("experiments") / "warehouse.duckdb"
    shutil.copy(built_warehouse, path)
    variables = {"experiments": EXPERIMENTS_VAR, "global_holdout_percent": 5}
    run_dbt(["run", "--select", "models/experiments", "--vars", json.dumps(variables)], warehouse=path, echo=False)
    return built_warehouse, path


def _rows(path: Path, sql: str) -> list[tuple]:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_the_model_assigns_every_member_by_the_rule(assigned):
    _, path = assigned
    rows = _rows(path, "select experiment, profile_id, arm from main.experiment_assignments")
    by_experiment: dict[str, dict[str, str]] = {}
    for experiment, pid, arm in rows:
        by_experiment.setdefault(experiment, {})[pid] = arm
    assert set(by_experiment) == {"global_holdout", "lapsed_test", "churn_test", "churn_risk_to_webhook"}
    held_out = {pid for pid, arm in by_experiment["global_holdout"].items() if arm == "control"}
    assert all(
        arm == assign("global_holdout", [("control", 5), ("treatment", 95)], pid)
        for pid, arm in by_experiment["global_holdout"].items()
    )
    arms = {
        "lapsed_test": [("control", 10), ("email", 45), ("ads", 45)],
        "churn_test": [("control", 20), ("treatment", 80)],
        "churn_risk_to_webhook": [("control", 10), ("treatment", 90)],
    }
    for experiment, members in arms.items():
        assert members and by_experiment[experiment]
        assert all(arm == assign(experiment, members, pid) for pid, arm in by_experiment[experiment].items())
        assert not held_out & set(by_experiment[experiment])  # the global holdout is in no other experiment
    # everyone who ever entered the segment, once, with the day of their first entry
    expected = _rows(
        path,
        "select count(distinct h.profile_id) from main.segment_membership_history h "
        "join main.profiles p using (profile_id) where h.segment_name = 'lapsed_customers'",
    )[0][0]
    assert len(by_experiment["lapsed_test"]) == expected - len(held_out & _segment(path, "lapsed_customers"))


def _segment(path: Path, name: str) -> set[str]:
    return {
        row[0]
        for row in _rows(path, f"select profile_id from main.segment_membership_history where segment_name = '{name}'")
    }


def test_arms_are_stable_across_builds_and_as_the_segment_changes(assigned):
    """The plain build and the rebuilt views give the churn holdout the same arms; a member's arm
    does not depend on who else is in the segment (the property test above), so a segment that
    changes keeps everyone's arm: here the holdout's arms equal those of the holdout in the sync plan."""
    built, rebuilt = assigned
    sql = "select profile_id, arm from main.experiment_assignments where experiment = 'churn_risk_to_webhook'"
    first = dict(_rows(built, sql))
    second = dict(_rows(rebuilt, sql))
    global_holdout = {
        pid
        for pid, arm in _rows(
            rebuilt, "select profile_id, arm from main.experiment_assignments where experiment = 'global_holdout'"
        )
        if arm == "control"
    }
    assert first and {pid: arm for pid, arm in first.items() if pid not in global_holdout} == second
    assert all((arm == "control") == (bucket(f"churn_risk_to_webhook:{pid}", 100) < 10) for pid, arm in first.items())


# -- the same arms on every engine ---------------------------------------------------------------


def _assignments_on(target, variables: dict, folder: Path):
    """The experiment views rebuilt on ``target`` with ``variables``, then their assignments read back."""
    import pandas as pd
    from engines import dump_tables

    from cdp.dbt import run_dbt

    run_dbt(
        ["run", "--select", "models/experiments", "--vars", json.dumps(variables)],
        target=target.name,
        echo=False,
    )
    dump_tables(target, target.schema, ["experiment_assignments"], folder)
    return pd.read_parquet(folder / "experiment_assignments.parquet")


def _assert_the_rule_assigned(frame) -> None:
    arms = {
        "lapsed_test": [("control", 10), ("email", 45), ("ads", 45)],
        "churn_test": [("control", 20), ("treatment", 80)],
        "global_holdout": [("control", 5), ("treatment", 95)],
    }
    assert set(arms) <= set(frame["experiment"])
    chosen = frame[frame["experiment"].isin(list(arms))]
    assert {"email", "ads"} <= set(chosen["arm"])  # the second level (which treated arm) is exercised
    wrong = [
        (experiment, pid, arm)
        for experiment, pid, arm in chosen[["experiment", "profile_id", "arm"]].itertuples(index=False)
        if arm != assign(experiment, arms[experiment], pid)
    ]
    assert not wrong, f"{len(wrong)} members in the wrong arm, e.g. {wrong[:3]}"


@pytest.mark.slow
def test_postgres_assigns_every_arm_by_the_rule(postgres_build, postgres_server, monkeypatch, tmp_path: Path):
    """Both levels of the hash (control by mod 100, then the treated arm by mod 10000) on Postgres,
    on a copy of the session's Postgres build with the two experiments and a 5% global holdout."""
    from sync_engines import postgres_database

    with postgres_database(postgres_server, copy_of=postgres_build.target.settings["dbname"]) as copy:
        monkeypatch.setenv("CDP_POSTGRES_DATABASE", copy.settings["dbname"])
        variables = {"experiments": EXPERIMENTS_VAR, "global_holdout_percent": 5}
        _assert_the_rule_assigned(_assignments_on(postgres_build.target, variables, tmp_path))


@pytest.mark.slow
@pytest.mark.spark
def test_spark_assigns_every_arm_by_the_rule(spark_build, tmp_path: Path):
    """The same on Spark (its own spelling of the hash: conv over the MD5's hex pairs). The session's
    Spark build is shared, so its experiment views are put back as built afterwards."""
    from cdp.dbt import run_dbt

    try:
        variables = {"experiments": EXPERIMENTS_VAR, "global_holdout_percent": 5}
        _assert_the_rule_assigned(_assignments_on(spark_build.target, variables, tmp_path))
    finally:
        run_dbt(["run", "--select", "models/experiments"], target=spark_build.target.name, echo=False)
