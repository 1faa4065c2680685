"""Where things live and which engine runs them. One environment variable each moves the whole pipeline.

``CDP_TARGET``     the dbt target (an output of ``dbt_project/profiles.yml``): ``duckdb`` (default),
                   ``postgres``, ``spark``, ``spark_thrift`` or any output you add there; syncs read
                   their data there.
``CDP_WAREHOUSE``  path of the DuckDB file (default: ``<repo>/warehouse/cdp.duckdb``); on other targets
                   the sample generator writes it first and ``cdp load-raw`` copies its raw tables over.
``CDP_SPARK_DIR``  the local Spark target's tables and metastore (default: ``<repo>/warehouse/spark``).
``CDP_SYNC_STATE`` where syncs keep their state when the target has no transactions (Spark), or to keep
                   it apart: ``duckdb:///path/state.duckdb`` or ``postgresql://user:password@host:port/db``
                   (default: the warehouse itself, or for Spark ``sync_state.duckdb`` beside CDP_WAREHOUSE).

``CDP_BUILD_SCHEDULE``  cron expression of the Dagster build-and-sync schedule (default hourly).

Every tool — the CLI, dbt (through ``dbt_project/profiles.yml``), Dagster, the tests and the
benchmarks — reads these from here, so setting one variable moves everything.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
WAREHOUSE_ENV_VAR = "CDP_WAREHOUSE"
DEFAULT_WAREHOUSE = REPO_ROOT / "warehouse" / "cdp.duckdb"

TARGET_ENV_VAR = "CDP_TARGET"
DEFAULT_TARGET = "duckdb"

SPARK_DIR_ENV_VAR = "CDP_SPARK_DIR"
DEFAULT_SPARK_DIR = REPO_ROOT / "warehouse" / "spark"

#: the sync state store (destinations/warehouse/locations.py reads it)
SYNC_STATE_ENV_VAR = "CDP_SYNC_STATE"

#: cron expression of the Dagster build-and-sync schedule (orchestration/automation.py)
BUILD_SCHEDULE_ENV_VAR = "CDP_BUILD_SCHEDULE"
DEFAULT_BUILD_SCHEDULE = "0 * * * *"

RAW_SCHEMA = "raw"
GROUND_TRUTH_SCHEMA = "ground_truth"


def warehouse_path() -> Path:
    """The DuckDB file the pipeline reads and writes, as an absolute path."""
    configured = os.environ.get(WAREHOUSE_ENV_VAR)
    path = Path(configured).expanduser() if configured else DEFAULT_WAREHOUSE
    return path.resolve()


def export_warehouse_env() -> Path:
    """Pin ``CDP_WAREHOUSE`` (and ``CDP_SPARK_DIR``) to absolute paths for child processes (dbt, Dagster).

    dbt resolves a relative path against its own working directory, so we hand it absolute ones.
    """
    path = warehouse_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.environ[WAREHOUSE_ENV_VAR] = str(path)
    os.environ[SPARK_DIR_ENV_VAR] = str(spark_dir())
    return path


def target_name() -> str:
    """The dbt target every tool uses: ``CDP_TARGET``, else ``duckdb``."""
    return os.environ.get(TARGET_ENV_VAR, "").strip() or DEFAULT_TARGET


def export_target_env(name: str | None) -> str:
    """Choose the target for this process and its children (dbt, the predictive step); return its name."""
    if name:
        os.environ[TARGET_ENV_VAR] = name
    chosen = target_name()
    os.environ[TARGET_ENV_VAR] = chosen
    return chosen


def spark_dir() -> Path:
    """Folder of the local Spark target: its parquet tables (``tables/``) and Derby metastore (``metastore/``)."""
    configured = os.environ.get(SPARK_DIR_ENV_VAR)
    path = Path(configured).expanduser() if configured else DEFAULT_SPARK_DIR
    return path.resolve()


def build_schedule() -> str:
    """When the build-and-sync schedule runs: ``CDP_BUILD_SCHEDULE``, or hourly."""
    return os.environ.get(BUILD_SCHEDULE_ENV_VAR, "").strip() or DEFAULT_BUILD_SCHEDULE
