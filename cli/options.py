"""Options and helpers shared by every `cdp` command module."""

from __future__ import annotations

import os
from pathlib import Path

import click

from cdp import settings

warehouse_option = click.option(
    "--warehouse",
    type=click.Path(dir_okay=False),
    default=None,
    help=f"DuckDB file to use (default: ${settings.WAREHOUSE_ENV_VAR} or {settings.DEFAULT_WAREHOUSE}).",
)

target_option = click.option(
    "--target",
    default=None,
    metavar="NAME",
    help=(
        f"dbt target (an output of dbt_project/profiles.yml: duckdb, postgres, spark, …; "
        f"default: ${settings.TARGET_ENV_VAR} or {settings.DEFAULT_TARGET})."
    ),
)


def use_warehouse(path: str | None) -> Path:
    """Point this process and its children (dbt) at the chosen warehouse file."""
    if path:
        os.environ[settings.WAREHOUSE_ENV_VAR] = str(Path(path).expanduser().resolve())
    return settings.export_warehouse_env()


def use_target(name: str | None):
    """Point this process and its children at the chosen dbt target; return it (cdp.targets.Target)."""
    from cdp.targets import TargetError, load_target

    chosen = settings.export_target_env(name)
    try:
        return load_target(chosen)
    except TargetError as error:
        raise click.ClickException(str(error)) from None


def require_duckdb_target(command: str) -> None:
    """Refuse a command that works on the DuckDB file only while CDP_TARGET names another engine.

    Manual segments, `tables`, `identity-report` and the demo read and write the DuckDB file; run
    against a Postgres or Spark build they would read the wrong warehouse without a word. (`cdp sync`
    and `cdp syncs` run on every engine through destinations/warehouse/.)
    """
    from cdp.targets import TargetError, load_target

    try:
        target = load_target()
    except TargetError as error:
        raise click.ClickException(str(error)) from None
    if target.engine != "duckdb":
        raise click.ClickException(
            f"`cdp {command}` works on the DuckDB warehouse only, and {settings.TARGET_ENV_VAR} names target "
            f"{target.name!r} ({target.engine}). Unset {settings.TARGET_ENV_VAR} (or set it to a duckdb target) "
            "to run it."
        )
