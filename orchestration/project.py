"""The one place that declares the dbt project for Dagster."""

from __future__ import annotations

from dagster_dbt import DbtProject

from cdp.settings import DBT_PROJECT_DIR, export_warehouse_env

# dbt reads the warehouse path from CDP_WAREHOUSE; make it absolute before dbt parses.
export_warehouse_env()

cdp_dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# Under `dagster dev` this (re)parses the project so the UI shows the current models;
# elsewhere (tests, CI, deployments) the manifest is prepared explicitly: `cdp prepare`.
cdp_dbt_project.prepare_if_dev()


def ensure_manifest() -> None:
    """Parse the dbt project if no manifest exists yet (a fresh clone)."""
    if not cdp_dbt_project.manifest_path.exists():
        cdp_dbt_project.preparer.prepare(cdp_dbt_project)
