"""The Definitions object: the only place resources are bound."""

from __future__ import annotations

import dagster as dg
from dagster_dbt import DbtCliResource

from cdp.dbt import dbt_executable
from orchestration.dbt_assets import cdp_dbt_models
from orchestration.project import cdp_dbt_project

defs = dg.Definitions(
    assets=[cdp_dbt_models],
    resources={
        # the dbt installed beside this Python, so an un-activated virtualenv works too
        "dbt": DbtCliResource(project_dir=cdp_dbt_project, dbt_executable=dbt_executable()),
    },
)
