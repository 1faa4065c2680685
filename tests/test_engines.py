"""The same project on DuckDB, Postgres and Spark: the sample built on each agrees with DuckDB.

Each engine builds the session's sample once (tests/engines.py: load the raw tables, `cdp build`,
rebuild the identity models, read the public tables back). Postgres tests need a server
(CDP_POSTGRES_*; CI starts one); Spark tests carry the `spark` marker (`pytest -m "not spark"`
leaves them out) and share one build, since every Spark JVM start costs 10-25 s.

Keys and text must be identical; money may differ by a cent and shares by their last decimal,
only where the engines' decimal arithmetic genuinely differs (TOLERANCES says which and why).
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from engines import COMPARED_TABLES, INCREMENTAL_TABLES, EngineBuild

from cdp.build import split_selection
from cdp.dbt import DbtError, run_dbt
from cdp.predictive.step import FittedModel, PredictiveStepError, Relation, fitted_models

#: Columns allowed to differ, by at most this much, and why. Everything else must be identical.
#: - decimal(12,4) / decimal(5,4) results of a DOUBLE division: each engine turns the double into a
#:   decimal its own way (DuckDB from the binary value, Postgres and Spark from its shortest decimal
#:   form), so a value on a rounding tie may land one unit of the last place apart.
TOLERANCES: dict[tuple[str, str], float] = {
    ("profile_attributes", "purchase_frequency_per_month"): 0.0001,
    ("profile_attributes", "online_share_of_value"): 0.0001,
}

#: Columns that hold when a build ran (the wall clock), which no two builds share: not compared.
BUILD_TIME_COLUMNS = {("experiment_assignments", "entered_at"), ("experiment_assignments", "entered_on")}

#: The build's names unit test (dbt_project/models/staging/crm/_crm__models.yml).
NAMES_UNIT_TEST = "stg_crm__contacts::names_are_trimmed_single_spaced_and_capitalised_per_word"

ENGINES = [
    pytest.param("postgres_build", id="postgres"),
    pytest.param("spark_build", id="spark", marks=pytest.mark.spark),
]


def _canonical(value):
    """One spelling per value: NULLs as None, numbers as float, timestamps as pandas Timestamps."""
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    if hasattr(value, "isoformat"):
        return pd.Timestamp(value).tz_localize(None) if pd.Timestamp(value).tzinfo else pd.Timestamp(value)
    return value


def _rows(frame: pd.DataFrame, keys: tuple[str, ...]) -> dict[tuple, dict[str, object]]:
    records = [{column: _canonical(value) for column, value in row.items()} for row in frame.to_dict("records")]
    return {tuple(record[key] for key in keys): record for record in records}


def differences(table: str, expected: pd.DataFrame, actual: pd.DataFrame, keys: tuple[str, ...]) -> list[str]:
    """What differs between two versions of a table: missing or extra keys, and cells beyond TOLERANCES."""
    problems: list[str] = []
    if sorted(expected.columns) != sorted(actual.columns):
        return [f"{table}: columns {sorted(expected.columns)} != {sorted(actual.columns)}"]
    left, right = _rows(expected, keys), _rows(actual, keys)
    if len(left) != len(expected) or len(right) != len(actual):
        problems.append(f"{table}: keys {keys} not unique ({len(expected)} / {len(actual)} rows)")
    for key in sorted(set(left) ^ set(right), key=str)[:5]:
        problems.append(f"{table}: {key} only on {'duckdb' if key in left else 'the other engine'}")
    for key in sorted(set(left) & set(right), key=str):
        for column, value in left[key].items():
            other = right[key][column]
            if value == other or (table, column) in BUILD_TIME_COLUMNS:
                continue
            tolerance = TOLERANCES.get((table, column), 0.0)
            if isinstance(value, float) and isinstance(other, float) and abs(value - other) <= tolerance + 1e-9:
                continue
            problems.append(f"{table}.{column} at {key}: duckdb {value!r}, other {other!r}")
    return problems


# --- the sample on every engine ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("table", list(COMPARED_TABLES))
def test_the_engine_builds_what_duckdb_builds(engine: str, table: str, duckdb_build: EngineBuild, request):
    """Identities, profiles, events, attributes, membership, scores and clusters match DuckDB's."""
    build: EngineBuild = request.getfixturevalue(engine)
    expected, actual = duckdb_build.table(table), build.table(table)
    assert len(expected) > 0
    problems = differences(table, expected, actual, COMPARED_TABLES[table])
    assert not problems, f"{len(problems)} differences, first ones:\n" + "\n".join(problems[:20])


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_every_data_and_unit_test_passed_on_the_engine_names_included(engine: str, request):
    """`cdp build` ran every test (a failure raises); the names unit test was among them, and passed."""
    build: EngineBuild = request.getfixturevalue(engine)
    assert f"PASS {NAMES_UNIT_TEST}" in build.build_output
    assert "ERROR=0" in build.build_output and "predictive step:" in build.build_output


@pytest.mark.slow
@pytest.mark.parametrize("engine", [pytest.param("duckdb_build", id="duckdb"), *ENGINES])
def test_the_id_registry_stays_unique_after_a_second_run(engine: str, request):
    build: EngineBuild = request.getfixturevalue(engine)
    registry = build.table("profile_id_registry")
    assert len(registry) > 0
    assert not registry.duplicated(["identifier_type", "identifier_value"]).any()
    merges = build.table("profile_merges")
    assert not merges.duplicated(["merged_profile_id", "surviving_profile_id"]).any()
    identifiers = build.table("profile_identifiers")
    assert set(registry["profile_id"]) >= set(identifiers["profile_id"])  # every current profile is registered


@pytest.mark.slow
@pytest.mark.spark
def test_spark_on_parquet_says_loudly_that_it_cannot_merge(spark_build: EngineBuild, postgres_build: EngineBuild):
    for model in INCREMENTAL_TABLES:
        message = (
            f"WARNING: {model}: Spark tables in parquet have no MERGE, so this incremental model is REBUILT IN FULL"
        )
        assert message in spark_build.rebuild_output
    assert "REBUILT IN FULL" not in postgres_build.rebuild_output


@pytest.mark.slow
def test_a_stand_in_whose_table_the_step_did_not_write_fails_the_build_and_says_how_to_fit_it(postgres_build):
    from cdp.build import run_predictive_step
    from cdp.engine_tables import postgres_connection

    target = postgres_build.target
    with postgres_connection(target) as con, con.cursor() as cursor:
        cursor.execute("drop table intermediate.int_predictive__cluster_assignments")
    with pytest.raises(DbtError) as failure:
        run_dbt(["build", "--select", "int_predictive__cluster_assignments"], echo=False, target=target.name)
    assert "int_predictive__cluster_assignments is fitted outside dbt on target postgres" in str(failure.value)
    assert "cdp build --target postgres" in str(failure.value)
    run_predictive_step(target, echo=False)  # put it back
    run_dbt(["build", "--select", "int_predictive__cluster_assignments"], echo=False, target=target.name)


# --- the predictive step ----------------------------------------------------------------------


def test_the_predictive_step_runs_the_python_models_code_with_the_same_result(built_warehouse: Path):
    """Features read through the warehouse connection, fitted by the functions the dbt Python
    models call: the same rows, bit for bit, as the dbt Python models wrote on DuckDB."""
    from cdp.engine_tables import opened, read_frame
    from cdp.predictive.clusters import clusters
    from cdp.predictive.scores import predictions
    from cdp.targets import load_target

    target = load_target("duckdb")
    with opened(target, built_warehouse, read_only=True) as con:
        training = read_frame(target, con, "intermediate", "int_predictive__training_set")
        current = read_frame(target, con, "intermediate", "int_predictive__scoring_set")
        fitted_by_dbt = read_frame(target, con, "intermediate", "int_predictive__predictions")
        clustered_by_dbt = read_frame(target, con, "intermediate", "int_predictive__cluster_assignments")

    fitted = predictions(training, current)
    clustered = clusters(current, fitted_by_dbt)
    for ours, theirs, key in (
        (fitted, fitted_by_dbt, ["scored_set", "profile_id"]),
        (clustered, clustered_by_dbt, ["profile_id"]),
    ):
        ours = ours.sort_values(key, ignore_index=True)
        theirs = theirs.sort_values(key, ignore_index=True)
        pd.testing.assert_frame_equal(ours, theirs, check_dtype=False, check_exact=True)


def _manifest(nodes: list[dict]) -> dict:
    return {
        "nodes": {
            f"model.cdp.{node['name']}": {"resource_type": "model", "alias": node["name"], **node} for node in nodes
        }
    }


def test_the_step_fits_stand_ins_after_the_stand_ins_they_read():
    manifest = _manifest(
        [
            {"name": "features", "schema": "intermediate", "config": {"materialized": "table"}, "refs": []},
            {
                "name": "clusters",
                "schema": "intermediate",
                "original_file_path": "c.sql",
                "config": {"materialized": "fitted_outside_dbt", "meta": {"fitted_by": "m:clusters"}},
                "refs": [{"name": "features"}, {"name": "scores"}],
            },
            {
                "name": "scores",
                "schema": "intermediate",
                "original_file_path": "s.sql",
                "config": {"materialized": "fitted_outside_dbt", "meta": {"fitted_by": "m:scores"}},
                "refs": [{"name": "features"}],
            },
        ]
    )
    assert fitted_models(manifest) == [
        FittedModel(
            "scores",
            Relation("intermediate", "scores"),
            "m:scores",
            (("features", Relation("intermediate", "features")),),
        ),
        FittedModel(
            "clusters",
            Relation("intermediate", "clusters"),
            "m:clusters",
            (("features", Relation("intermediate", "features")), ("scores", Relation("intermediate", "scores"))),
        ),
    ]
    manifest["nodes"]["model.cdp.scores"]["config"]["meta"] = {}
    with pytest.raises(PredictiveStepError, match=r"scores \(s.sql\) has no meta.fitted_by"):
        fitted_models(manifest)


def test_each_stand_in_names_the_function_its_python_model_calls(dbt_manifest: Path):
    """The stand-ins (disabled on DuckDB) and the Python models call the same function."""
    manifest = json.loads(dbt_manifest.read_text())
    stand_ins = {
        entry["name"]: entry["config"]["meta"]["fitted_by"]
        for entries in manifest["disabled"].values()
        for entry in entries
        if entry["config"].get("materialized") == "fitted_outside_dbt"
    }
    assert set(stand_ins) == {"int_predictive__predictions", "int_predictive__cluster_assignments"}
    for name, fitted_by in stand_ins.items():
        python_model = manifest["nodes"][f"model.cdp.{name}"]
        module, _, function = fitted_by.partition(":")
        assert python_model["language"] == "python"
        imported = {
            (statement.module, alias.name)
            for statement in ast.walk(ast.parse(python_model["raw_code"]))
            if isinstance(statement, ast.ImportFrom)
            for alias in statement.names
        }
        assert (module, function) in imported, f"{name} does not import {function} from {module}"


# --- plumbing ---------------------------------------------------------------------------------


def test_dbt_selection_arguments_are_told_apart_from_the_rest():
    args = [
        "--select",
        "profiles+",
        "segments",
        "--vars",
        "{as_of: x}",
        "--exclude=staging",
        "--full-refresh",
        "-s",
        "a",
    ]
    assert split_selection(args) == (
        ["--select", "profiles+", "segments", "--exclude=staging", "-s", "a"],
        ["--vars", "{as_of: x}", "--full-refresh"],
    )


def test_names_dbt_turns_into_relations_fit_postgres_63_characters(dbt_manifest: Path):
    """Unit tests become relations named after them; models and seeds are relations."""
    manifest = json.loads(dbt_manifest.read_text())
    names = [unit["name"] for unit in manifest["unit_tests"].values()]
    names += [node["alias"] for node in manifest["nodes"].values() if node["resource_type"] in ("model", "seed")]
    too_long = [name for name in names if len(name) > 63]
    assert not too_long


def test_an_unknown_target_is_refused_naming_the_ones_profiles_yml_defines():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "build", "--target", "nosuch"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert (
        "Unknown target 'nosuch'" in result.stderr and "defines duckdb, postgres, spark, spark_thrift" in result.stderr
    )


def test_a_target_reads_its_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    from cdp.targets import load_target

    monkeypatch.setenv("CDP_POSTGRES_HOST", "db.internal")
    monkeypatch.setenv("CDP_POSTGRES_PORT", "6543")
    monkeypatch.setenv("CDP_POSTGRES_PASSWORD", "from-the-environment")
    postgres = load_target("postgres")
    assert (postgres.engine, postgres.schema) == ("postgres", "main")
    assert postgres.settings["host"] == "db.internal" and postgres.settings["port"] == 6543
    assert postgres.settings["password"] == "from-the-environment"

    monkeypatch.setenv("CDP_TARGET", "spark")
    monkeypatch.setenv("CDP_SPARK_DIR", "/data/spark")
    spark = load_target()
    assert (spark.name, spark.engine) == ("spark", "spark")
    assert spark.settings["server_side_parameters"]["spark.sql.warehouse.dir"] == "/data/spark/tables"
    assert spark.settings["server_side_parameters"]["spark.sql.session.timeZone"] == "UTC"
    monkeypatch.delenv("CDP_TARGET")
    assert load_target().name == "duckdb"


@pytest.mark.parametrize("command", [["tables"], ["segments", "list"]])
def test_commands_on_the_duckdb_file_refuse_another_target_rather_than_read_the_wrong_warehouse(command):
    import os
    import subprocess
    import sys

    env = {**os.environ, "CDP_TARGET": "postgres"}
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", *command], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode != 0
    assert f"`cdp {command[0]}` works on the DuckDB warehouse only, and CDP_TARGET names target 'postgres'" in (
        result.stderr
    )


#: A shipped sync (dbt_project/models/syncs/_syncs__exposures.yml) to the sandbox's webhook.
ENGINE_SYNC = "champions_to_webhook"


def _sync_to_a_sandbox(env: dict[str, str], *args: str) -> set[str]:
    """`cdp sync ENGINE_SYNC` in a child process (Spark's JVM must not live in pytest) against a fresh
    sandbox; the keys the webhook then holds."""
    import os
    import subprocess
    import sys

    from destinations.sandbox import SandboxServer, demo_environment, emulators

    with SandboxServer(emulators()) as server:
        child = {**os.environ, **demo_environment(server.ready_document()), **env}
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", "sync", ENGINE_SYNC, "--quiet", *args],
            capture_output=True,
            text=True,
            timeout=1800,
            env=child,
        )
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
        return set(server.emulators["webhook"].state)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_a_sync_runs_from_the_engines_build_and_sends_what_duckdb_sends(
    engine: str, built_warehouse: Path, tmp_path: Path, request
):
    """The sync reads the engine's own build (CDP_TARGET) and keeps its state in the warehouse, or on
    Spark in the DuckDB store CDP_SYNC_STATE names; the webhook ends up holding exactly the people
    the same sync sends from the DuckDB build."""
    import shutil

    build: EngineBuild = request.getfixturevalue(engine)
    duckdb_copy = tmp_path / "duckdb.duckdb"
    shutil.copy(built_warehouse, duckdb_copy)
    expected = _sync_to_a_sandbox({"CDP_TARGET": "duckdb"}, "--warehouse", str(duckdb_copy))
    env = {"CDP_TARGET": build.target.name}
    if build.target.engine == "spark":
        env["CDP_SYNC_STATE"] = f"duckdb:///{tmp_path / 'sync_state.duckdb'}"
    held = _sync_to_a_sandbox(env)
    assert held == expected and len(expected) > 2


@pytest.mark.slow
def test_dagster_fits_the_python_models_between_its_two_dbt_invocations_on_postgres(
    postgres_server, generated_warehouse: Path, tmp_path: Path
):
    """On a target without dbt Python models, the Dagster dbt asset runs `cdp build`'s three parts:
    dbt up to the stand-ins, the predictive step, dbt for the rest. Materialising the scores and
    everything upstream from scratch succeeds, and the scores are there."""
    import os
    import subprocess
    import sys

    from sync_engines import postgres_database

    from cdp.settings import REPO_ROOT

    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    with postgres_database(postgres_server) as database:
        settings = database.settings
        env = {
            **os.environ,
            "CDP_TARGET": "postgres",
            "CDP_POSTGRES_HOST": str(settings["host"]),
            "CDP_POSTGRES_PORT": str(settings["port"]),
            "CDP_POSTGRES_USER": str(settings["user"]),
            "CDP_POSTGRES_PASSWORD": str(settings["password"]),
            "CDP_POSTGRES_DATABASE": str(settings["dbname"]),
            "DAGSTER_HOME": str(dagster_home),
        }

        def run(*command: str) -> str:
            done = subprocess.run(command, capture_output=True, text=True, timeout=1800, env=env, cwd=REPO_ROOT)
            output = done.stdout + done.stderr
            assert done.returncode == 0, output[-4000:]
            return output

        run(
            sys.executable,
            "-m",
            "cli.main",
            "load-raw",
            "--target",
            "postgres",
            "--warehouse",
            str(generated_warehouse),
        )
        dagster = str(Path(sys.executable).with_name("dagster"))
        output = run(dagster, "asset", "materialize", "-m", "orchestration.definitions", "--select", "kind:dbt")
        assert "predictive step: fitting" in output
        with database.open() as warehouse:
            scored = warehouse.fetch("select count(*), count(churn_probability) from main.profile_scores")[0]
            people = warehouse.fetch("select count(*) from main.profiles")[0][0]
    assert scored[0] == people > 0 and scored[1] > 0


@pytest.mark.slow
@pytest.mark.spark
def test_cdp_forget_records_the_request_in_spark_where_the_build_reads_it(spark_build: EngineBuild, tmp_path: Path):
    """`cdp forget` on Spark writes its request (a tombstone) to the Spark catalog, once however often
    it is asked, and the build's request model reads it there (the Postgres build's erasure is
    tests/test_erasure.py's; on Spark the sample's own requests are erased in every build above)."""
    import re

    from engines import cdp_command, dump_tables

    from cdp.privacy.identifiers import parse_identifier
    from cdp.privacy.tombstones import tombstone

    email = "someone.to.forget@example.com"
    recorded = cdp_command("forget", email, "--by", "dpo", "--target", "spark")
    request_id = re.search(r"request (cli-[0-9a-f-]+)", recorded).group(1)
    assert email not in recorded
    again = cdp_command("forget", email.upper(), "--target", "spark")
    assert f"already asked to be forgotten: request {request_id}" in again

    run_dbt(["run", "--select", "int_privacy__requests"], target="spark", echo=False)
    dump_tables(spark_build.target, "intermediate", ["int_privacy__requests"], tmp_path)
    requests = pd.read_parquet(tmp_path / "int_privacy__requests.parquet")
    from_cli = requests[requests["source"] == "cli"]
    assert from_cli[["request_id", "tombstone"]].values.tolist() == [[request_id, tombstone(parse_identifier(email))]]
