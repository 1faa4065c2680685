"""The Definitions object: the only place resources are bound."""

from __future__ import annotations

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.dbt_assets import cdp_dbt_models
from orchestration.project import cdp_dbt_project

defs = dg.Definitions(
    assets=[cdp_dbt_models],
    resources={
        "dbt": DbtCliResource(project_dir=cdp_dbt_project),
    },
)
