"""The one place that declares the dbt project and the dbt resource for Dagster.

Built on first use inside cached functions, never at import: importing a module of this
package reads no file, parses nothing and leaves the environment alone.
"""

from __future__ import annotations

from functools import cache

from dagster_dbt import DbtCliResource, DbtProject

from cdp.dbt import dbt_executable, fresh_manifest
from cdp.settings import DBT_PROJECT_DIR


@cache
def cdp_dbt_project() -> DbtProject:
    """The dbt project, with a manifest that reflects the files on disk (parsed now if stale)."""
    manifest = fresh_manifest()
    return DbtProject(
        project_dir=DBT_PROJECT_DIR,
        profiles_dir=DBT_PROJECT_DIR,
        # where fresh_manifest keeps it (target/, or DBT_TARGET_PATH), so project.manifest_path agrees
        target_path=manifest.parent,
    )


@cache
def dbt_resource() -> DbtCliResource:
    """The dbt CLI resource: the dbt installed beside this Python, so an un-activated virtualenv works."""
    return DbtCliResource(project_dir=cdp_dbt_project(), dbt_executable=dbt_executable())
