"""`cdp lift NAME`: an experiment's arms against control, as dbt measured them (experiment_lift)."""

from __future__ import annotations

import click

from cli.console import console, table
from cli.options import use_warehouse as _use_warehouse
from cli.options import warehouse_option


@click.command("lift")
@click.argument("name")
@warehouse_option
def lift_command(name: str, warehouse: str | None) -> None:
    """Print experiment NAME's lift: members, conversion and revenue per arm, each non-control arm's
    absolute and relative lift with 95% intervals and p-values, and a note when the arms are too small
    to tell. NAME is an experiment of dbt_project.yml vars.experiments, a sync with a holdout_percent,
    or global_holdout. Reads the warehouse only (run `cdp build` first)."""
    from cdp.lift import COLUMNS, UnknownExperimentError, read_lift, rendered_rows
    from destinations.warehouse import MissingTableError
    from destinations.warehouse.locations import sync_locations

    path = _use_warehouse(warehouse)
    data, _ = sync_locations(path)
    if not data.exists():
        raise click.ClickException(f"No warehouse at {data.describe()}. Run `cdp build` first.")
    try:
        with data.read_only().open() as con:
            arms = read_lift(con, name)
    except MissingTableError:
        raise click.ClickException("The warehouse has no main.experiment_lift: run `cdp build` first.") from None
    except UnknownExperimentError as error:
        raise click.ClickException(str(error)) from None
    out = console()
    rendered = table(f"Experiment {name}: purchases within {arms[0].outcome_days} days of entering")
    for heading, _ in COLUMNS:
        rendered.add_column(heading, justify="left" if heading == "arm" else "right")
    for row in rendered_rows(arms):
        rendered.add_row(*row)
    out.print(rendered)
    for arm in arms:
        if arm.note and not arm.is_control:
            out.print(f"{arm.arm}: {arm.note}")
