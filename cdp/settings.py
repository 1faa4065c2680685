"""Where things live. One environment variable points the whole pipeline at a warehouse.

``CDP_WAREHOUSE``  path of the DuckDB file (default: ``<repo>/warehouse/cdp.duckdb``).
Every tool — the CLI, dbt (through ``dbt_project/profiles.yml``), Dagster, the tests
and the benchmarks — reads the warehouse path from here, so setting that one
variable moves everything.

``CDP_BUILD_SCHEDULE``  cron expression of the Dagster build-and-sync schedule (default hourly).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
WAREHOUSE_ENV_VAR = "CDP_WAREHOUSE"
DEFAULT_WAREHOUSE = REPO_ROOT / "warehouse" / "cdp.duckdb"

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
    """Pin ``CDP_WAREHOUSE`` to an absolute path for child processes (dbt, Dagster).

    dbt resolves a relative DuckDB path against its own working directory, so we
    hand it an absolute one.
    """
    path = warehouse_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.environ[WAREHOUSE_ENV_VAR] = str(path)
    return path


def build_schedule() -> str:
    """When the build-and-sync schedule runs: ``CDP_BUILD_SCHEDULE``, or hourly."""
    return os.environ.get(BUILD_SCHEDULE_ENV_VAR, "").strip() or DEFAULT_BUILD_SCHEDULE
