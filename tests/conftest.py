"""Shared fixtures. dbt invocations cost seconds: warehouses are built once per session
(or per module for scenario worlds) and shared; only tests that need their own data build
their own."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from cdp.settings import WAREHOUSE_ENV_VAR
from destinations.alerts.config import ALERTS_ENV_VAR

#: Small enough to build in seconds, large enough for every segment and noise kind to show.
SESSION_PEOPLE = 2_000
SESSION_SEED = 20261101


@pytest.fixture(scope="session", autouse=True)
def _isolated_warehouse_env(tmp_path_factory: pytest.TempPathFactory):
    """No test may touch the developer's own warehouse: point CDP_WAREHOUSE at a temp file.
    Nor send alerts through the shipped alerts.yml: tests of alerts name their own file."""
    isolated = {
        WAREHOUSE_ENV_VAR: str(tmp_path_factory.mktemp("default") / "unused.duckdb"),
        ALERTS_ENV_VAR: "off",
    }
    previous = {name: os.environ.get(name) for name in isolated}
    os.environ.update(isolated)
    yield
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def dbt_manifest() -> Path:
    """The dbt manifest, as every caller gets it (parsed once if the project changed since)."""
    from cdp.dbt import fresh_manifest

    manifest = fresh_manifest()
    assert manifest.exists()
    return manifest


@pytest.fixture(scope="session")
def generated_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sample data for SESSION_PEOPLE people, raw tables only (no dbt)."""
    from cdp.sample_data.generator import GeneratorConfig, generate

    path = tmp_path_factory.mktemp("generated") / "warehouse.duckdb"
    generate(GeneratorConfig(people=SESSION_PEOPLE, seed=SESSION_SEED), warehouse=path, progress=False)
    return path


@pytest.fixture(scope="session")
def built_warehouse(tmp_path_factory: pytest.TempPathFactory, generated_warehouse: Path) -> Path:
    """The generated sample after a full `dbt build` (models and tests). Read-only for tests."""
    import shutil

    from cdp.dbt import run_dbt

    path = tmp_path_factory.mktemp("built") / "warehouse.duckdb"
    shutil.copy(generated_warehouse, path)
    run_dbt(["build"], warehouse=path, echo=False)
    return path
