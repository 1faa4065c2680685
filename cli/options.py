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


def use_warehouse(path: str | None) -> Path:
    """Point this process and its children (dbt) at the chosen warehouse file."""
    if path:
        os.environ[settings.WAREHOUSE_ENV_VAR] = str(Path(path).expanduser().resolve())
    return settings.export_warehouse_env()
