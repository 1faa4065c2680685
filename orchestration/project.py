"""The one place that declares the dbt project and the dbt resource for Dagster.

Built on first use inside cached functions, never at import: importing a module of this
package reads no file, parses nothing and leaves the environment alone. The dbt target is
CDP_TARGET's (cdp/settings.py; DuckDB by default), read when the project is first built.
"""

from __future__ import annotations

from functools import cache

from dagster_dbt import DbtCliResource, DbtProject

from cdp.dbt import dbt_executable, fresh_manifest
from cdp.settings import DBT_PROJECT_DIR, target_name


@cache
def cdp_dbt_project() -> DbtProject:
    """The dbt project for the current target, with a manifest that reflects the files on disk (parsed now if stale)."""
    target = target_name()
    manifest = fresh_manifest(target=target)
    return DbtProject(
        project_dir=DBT_PROJECT_DIR,
        profiles_dir=DBT_PROJECT_DIR,
        target=target,
        # where fresh_manifest keeps it (target/, target/<name>/ for other targets, or under DBT_TARGET_PATH)
        target_path=manifest.parent,
    )


@cache
def dbt_resource() -> DbtCliResource:
    """The dbt CLI resource: the dbt installed beside this Python, so an un-activated virtualenv works."""
    project = cdp_dbt_project()
    return DbtCliResource(project_dir=project, dbt_executable=dbt_executable(), target=project.target)
