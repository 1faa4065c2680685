"""The Definitions object: the only place resources are bound."""

from __future__ import annotations

import dagster as dg
from dagster_dbt import DbtCliResource

from cdp.dbt import dbt_executable
from orchestration.dbt_assets import cdp_dbt_models
from orchestration.project import cdp_dbt_project
from orchestration.sync_assets import SyncEngine, build_sync_definitions

sync_assets, sync_schedules = build_sync_definitions()

defs = dg.Definitions(
    assets=[cdp_dbt_models, *sync_assets],
    schedules=sync_schedules,
    resources={
        # the dbt installed beside this Python, so an un-activated virtualenv works too
        "dbt": DbtCliResource(project_dir=cdp_dbt_project, dbt_executable=dbt_executable()),
        # warehouse from CDP_WAREHOUSE, connections from destinations.yml (secrets from env)
        "sync_engine": SyncEngine(),
    },
)
