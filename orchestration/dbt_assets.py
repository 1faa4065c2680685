"""Every dbt model, seed and snapshot as a Dagster asset; dbt tests become asset checks.

The asset definition is built on first use (`cdp_dbt_assets()`), not at import: it needs
the dbt manifest, which may have to be parsed first.

(No `from __future__ import annotations` here: Dagster reads the asset function's
annotations to find its resources.)
"""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from cdp.settings import WAREHOUSE_ENV_VAR, warehouse_path
from orchestration.project import cdp_dbt_project

#: Everything that writes the DuckDB file runs in this pool (limit 1: DuckDB has one writer).
WAREHOUSE_POOL = "duckdb_warehouse"


def _group_for(dbt_resource_props: Mapping[str, Any]) -> str:
    """Group assets by the folder under models/ (staging, identity, profiles, …)."""
    if dbt_resource_props["resource_type"] == "seed":
        return "reference_data"
    fqn = dbt_resource_props.get("fqn", [])
    return fqn[1] if len(fqn) > 2 else "models"


class CdpDbtTranslator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return _group_for(dbt_resource_props)


@contextmanager
def _absolute_warehouse_env() -> Iterator[None]:
    """While dbt runs: CDP_WAREHOUSE as an absolute path, its folder created.

    dbt runs in dbt_project/ and would resolve a relative path from there; this is done
    when an asset runs, never at import.
    """
    previous = os.environ.get(WAREHOUSE_ENV_VAR)
    path = warehouse_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.environ[WAREHOUSE_ENV_VAR] = str(path)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(WAREHOUSE_ENV_VAR, None)
        else:
            os.environ[WAREHOUSE_ENV_VAR] = previous


@cache
def cdp_dbt_assets() -> dg.AssetsDefinition:
    """The dbt project as one multi-asset (built once per process, from a fresh manifest)."""
    project = cdp_dbt_project()

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=CdpDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)),
        pool=WAREHOUSE_POOL,
    )
    def cdp_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
        with _absolute_warehouse_env():
            yield from dbt.cli(["build"], context=context).stream()

    return cdp_dbt_models
