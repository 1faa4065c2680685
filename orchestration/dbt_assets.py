"""Every dbt model, seed and snapshot as a Dagster asset; dbt tests become asset checks."""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

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


dbt_translator = CdpDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


@dbt_assets(
    manifest=cdp_dbt_project.manifest_path,
    project=cdp_dbt_project,
    dagster_dbt_translator=dbt_translator,
    pool=WAREHOUSE_POOL,
)
def cdp_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    yield from dbt.cli(["build"], context=context).stream()
