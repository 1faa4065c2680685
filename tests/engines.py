"""Postgres and Spark for the tests: find them, build the sample on them once, read their tables back.

A missing engine skips its tests with the reason on a developer's machine, and fails them where
CDP_REQUIRE_ENGINES=1 (CI sets it: `.ci/run` installs and starts Postgres; Spark comes with the
`spark` extra). Spark work always runs in child processes: its embedded Derby metastore admits
one JVM at a time, and a JVM inside the pytest process would lock out every later dbt run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pandas as pd
import pytest

from cdp.build import build_project
from cdp.targets import Target

#: Set to 1 (CI does) and a missing engine fails its tests instead of skipping them.
REQUIRE_ENGINES_ENV = "CDP_REQUIRE_ENGINES"

#: The public models the engines must agree on, with the columns that identify a row.
COMPARED_TABLES: dict[str, tuple[str, ...]] = {
    "profile_identifiers": ("profile_id", "identifier_type", "identifier_value"),
    "profiles": ("profile_id",),
    "profile_events": ("profile_id", "source", "event_id"),
    "profile_attributes": ("profile_id",),
    "segment_membership": ("segment_name", "profile_id"),
    "profile_scores": ("profile_id",),
    "profile_clusters": ("profile_id",),
    # the arms: a person must not change arm when the warehouse moves (the hash is the same everywhere)
    "experiment_assignments": ("experiment", "profile_id"),
}
#: What a second build must keep unique (the incremental models).
INCREMENTAL_TABLES = ("profile_id_registry", "profile_merges")

#: A second run of the identity models only: they read the registry the first run wrote (Spark, where
#: a second whole build costs minutes and the incremental models are rebuilt in full anyway).
REBUILD_IDENTITY = ["--select", "int_identity__profile_assignments", "profile_id_registry", "profile_merges"]
#: A second whole build (DuckDB, Postgres): the incremental models update in place, and the tables
#: compared afterwards must still be what DuckDB's single build wrote.
REBUILD_ALL: list[str] = []


def engine_missing(reason: str) -> NoReturn:
    """Skip with the reason, or fail under CDP_REQUIRE_ENGINES=1."""
    if os.environ.get(REQUIRE_ENGINES_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENGINES_ENV}=1: every engine must run here)", pytrace=False)
    pytest.skip(reason)


def spark_missing_reason() -> str | None:
    """Why the local Spark target cannot run here, or None."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return 'pyspark is not installed: pip install -e ".[spark]"'
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java runtime for Spark (Debian: apt-get install openjdk-17-jre-headless)"
    return None


def cdp_command(*args: str, timeout: int = 1800) -> str:
    """Run `cdp <args>` in a child process; its output, or a failure with the output's tail."""
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=timeout, env=os.environ
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"cdp {' '.join(args)} failed:\n{output[-4000:]}"
    return output


def dump_tables(target: Target, schema: str, tables: list[str], folder: Path, warehouse: Path | None = None) -> None:
    """Write each table as ``folder/<table>.parquet`` (in a child process: Spark's JVM must not live here)."""
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(Path(__file__).with_name("engine_dump.py")), "--target", target.name]
    command += ["--schema", schema, "--out", str(folder), *(["--warehouse", str(warehouse)] if warehouse else [])]
    result = subprocess.run([*command, *tables], capture_output=True, text=True, timeout=1800, env=os.environ)
    assert result.returncode == 0, (
        f"dumping {tables} from {target.name} failed:\n{(result.stdout + result.stderr)[-4000:]}"
    )


@dataclass
class EngineBuild:
    """The sample built on one engine: dbt's output of both runs, timings, and its tables as parquet files."""

    target: Target
    build_output: str
    rebuild_output: str
    tables: Path
    seconds: dict[str, float] = field(default_factory=dict)

    def table(self, name: str) -> pd.DataFrame:
        return pd.read_parquet(self.tables / f"{name}.parquet")


def build_sample_on(target: Target, generated: Path, folder: Path) -> EngineBuild:
    """Load the generated sample into the target, `cdp build` it, build again (Spark: the identity models), dump the tables."""
    seconds: dict[str, float] = {}
    started = time.monotonic()
    cdp_command("load-raw", "--target", target.name, "--warehouse", str(generated))
    seconds["load raw"] = time.monotonic() - started

    started = time.monotonic()
    output = build_project([], target, echo=False)
    seconds["build"] = time.monotonic() - started

    started = time.monotonic()
    second = REBUILD_IDENTITY if target.engine == "spark" else REBUILD_ALL
    rebuild = build_project(second, target, echo=False)
    seconds["rebuild identity" if second else "rebuild (incremental)"] = time.monotonic() - started

    started = time.monotonic()
    dump_tables(target, target.schema, [*COMPARED_TABLES, *INCREMENTAL_TABLES], folder)
    seconds["read back"] = time.monotonic() - started
    return EngineBuild(target, output, rebuild, folder, seconds)
