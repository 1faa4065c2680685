"""The Definitions, built by a function Dagster calls: the only place resources are bound.

Importing this module does nothing (no file read, no dbt parse, no environment change);
Dagster finds the `@dg.definitions` function below and calls it when it loads the code
location. Tests call `defs()` the same way.
"""

import dagster as dg

from orchestration.alerts import build_alert_sensors
from orchestration.automation import build_and_sync_schedule, raw_data_sensor, sync_automation_sensor
from orchestration.dbt_assets import cdp_dbt_assets
from orchestration.project import cdp_dbt_project, dbt_resource
from orchestration.sync_assets import SyncEngine, build_sync_definitions


@dg.definitions
def defs() -> dg.Definitions:
    dbt_models = cdp_dbt_assets()
    sync_assets, sync_schedules = build_sync_definitions()
    return dg.Definitions(
        assets=[dbt_models, *sync_assets],
        schedules=[*sync_schedules, build_and_sync_schedule(dbt_models, sync_assets)],
        sensors=[
            raw_data_sensor(dbt_models, cdp_dbt_project().manifest_path),
            sync_automation_sensor(sync_assets),
            # alerts.yml's rules: after builds, and on runs that fail outside a sync (orchestration/alerts.py)
            *build_alert_sensors(sync_assets),
        ],
        resources={
            # the dbt installed beside this Python, so an un-activated virtualenv works too
            "dbt": dbt_resource(),
            # warehouse from CDP_WAREHOUSE, connections from destinations.yml, alert rules from
            # alerts.yml (secrets from env)
            "sync_engine": SyncEngine(),
        },
    )
