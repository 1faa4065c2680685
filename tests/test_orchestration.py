"""Dagster loads the project and materialises the dbt assets for real."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cdp.settings import REPO_ROOT, WAREHOUSE_ENV_VAR
from cdp.warehouse import connect


def test_dagster_definitions_validate(dbt_manifest: Path):
    """`dagster definitions validate` on workspace.yaml, as CI and `dagster dev` load it."""
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in (result.stdout + result.stderr)


def test_definitions_hold_every_dbt_model_and_test_as_assets_and_checks(dbt_manifest: Path):
    from dagster_dbt import get_asset_key_for_model

    from orchestration.dbt_assets import cdp_dbt_models
    from orchestration.definitions import defs

    graph = defs.get_repository_def().asset_graph
    keys = set(graph.get_all_asset_keys())
    for model in ("profiles", "profile_identifiers", "profile_merges", "stg_crm__contacts", "identity_guard_decisions"):
        assert get_asset_key_for_model([cdp_dbt_models], model) in keys, f"{model} missing from Dagster assets"
    profiles = get_asset_key_for_model([cdp_dbt_models], "profiles")
    # dbt tests became asset checks on the model they test
    assert any(check.asset_key == profiles for check in graph.asset_check_keys)
    # assets are grouped by their dbt folder
    assert graph.get(profiles).group_name == "profiles"
    assert graph.get(get_asset_key_for_model([cdp_dbt_models], "stg_web__events")).group_name == "staging"


def test_materialise_dbt_assets_against_a_temporary_warehouse(
    dbt_manifest: Path, generated_warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import dagster as dg
    from dagster_dbt import DbtCliResource

    from cdp.dbt import dbt_executable
    from orchestration.dbt_assets import cdp_dbt_models
    from orchestration.project import cdp_dbt_project

    warehouse = tmp_path / "dagster.duckdb"
    shutil.copy(generated_warehouse, warehouse)
    monkeypatch.setenv(WAREHOUSE_ENV_VAR, str(warehouse))

    result = dg.materialize(
        [cdp_dbt_models],
        resources={"dbt": DbtCliResource(project_dir=cdp_dbt_project, dbt_executable=dbt_executable())},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success
    from dagster_dbt import get_asset_key_for_model

    materialised = {event.asset_key for event in result.get_asset_materialization_events()}
    for model in ("profiles", "profile_identifiers", "stg_web__events"):
        assert get_asset_key_for_model([cdp_dbt_models], model) in materialised, model
    checks = result.get_asset_check_evaluations()
    assert checks and all(check.passed for check in checks), [c.check_name for c in checks if not c.passed]
    with connect(warehouse, read_only=True) as con:
        (profiles,) = con.execute("select count(*) from profiles").fetchall()[0]
    assert profiles > 0
    assert os.environ[WAREHOUSE_ENV_VAR] == str(warehouse)
