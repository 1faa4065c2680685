"""`cdp`: the command line handle on the project.

Every command works against the warehouse named by CDP_WAREHOUSE (or --warehouse); `generate`,
`load-raw` and `build` against the dbt target named by CDP_TARGET (or --target) as well.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click

from cdp import settings
from cli.console import console, print_table, print_warehouse_tables, table
from cli.options import require_duckdb_target, target_option, warehouse_option
from cli.options import use_target as _use_target
from cli.options import use_warehouse as _use_warehouse


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Warehouse-native composable CDP: generate data, build profiles and segments, sync audiences."""


@main.command()
@click.option(
    "--people", type=click.IntRange(min=1), default=10_000, show_default=True, help="How many people to simulate."
)
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed; the same seed gives the same data.")
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    default="2026-11-01",
    show_default=True,
    help="The 'now' of the simulated world: no event is later than this.",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(min=100),
    default=20_000,
    show_default=True,
    help="People generated per chunk (bounds memory).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@warehouse_option
@target_option
def generate(
    people: int, seed: int, as_of: datetime, chunk_size: int, quiet: bool, warehouse: str | None, target: str | None
) -> None:
    """Fill every raw table of the data contract (schema `raw`) with realistic, messy sample data.

    Also writes schema `ground_truth`: the real person behind every source record,
    for scoring identity resolution. The generator writes the DuckDB file; on another target
    (`--target postgres`) the raw tables are then copied there, as `cdp load-raw` does.
    """
    from cdp.sample_data.generator import GeneratorConfig
    from cdp.sample_data.generator import generate as run_generator

    chosen = _use_target(target)
    path = _use_warehouse(warehouse)
    summary = run_generator(
        GeneratorConfig(people=people, seed=seed, as_of=as_of, chunk_size=chunk_size),
        warehouse=path,
        progress=not quiet,
    )
    generated = table(f"Generated {summary.people:,} people into {path} in {summary.seconds:.1f}s")
    generated.add_column("table")
    generated.add_column("rows", justify="right")
    for name, rows in summary.rows_by_table.items():
        generated.add_row(name, f"{rows:,}")
    print_table(generated)
    if chosen.engine != "duckdb":
        _load_raw_into(chosen, path)


@main.command("load-raw")
@target_option
@warehouse_option
def load_raw(target: str | None, warehouse: str | None) -> None:
    """Copy the raw tables (schema `raw`) of the DuckDB warehouse file into another target.

    How the sample reaches Postgres or Spark: `cdp generate` writes the DuckDB file, this copies its
    raw tables (types mapped per engine) into the target's schema `raw`, replacing them.
    """
    chosen = _use_target(target)
    path = _use_warehouse(warehouse)
    if chosen.engine == "duckdb":
        raise click.ClickException(f"Target {chosen.name!r} is the DuckDB file itself: nothing to copy.")
    if not path.exists():
        raise click.ClickException(f"No warehouse at {path}. Run `cdp generate` first.")
    _load_raw_into(chosen, path)


def _load_raw_into(chosen, path: Path) -> None:
    from cdp.engine_tables import EngineError
    from cdp.engine_tables import load_raw as copy_raw

    try:
        counts = copy_raw(path, chosen)
    except EngineError as error:
        raise click.ClickException(str(error)) from None
    loaded = table(f"Copied the raw tables of {path} into target {chosen.name} ({chosen.engine})")
    loaded.add_column("table")
    loaded.add_column("rows", justify="right")
    for name, rows in counts.items():
        loaded.add_row(name, f"{rows:,}")
    print_table(loaded)


@main.command()
@click.option("--force", is_flag=True, help="Parse even if the manifest looks current.")
def prepare(force: bool) -> None:
    """Parse the dbt project into its manifest (Dagster and the sync commands read it).

    Only parses when a project file changed since the manifest was written; Dagster and
    `cdp dev` do the same on their own, so this is for CI and deployments that want the
    manifest ready beforehand.
    """
    from cdp.dbt import DbtError, fresh_manifest

    _use_warehouse(None)
    try:
        manifest = fresh_manifest(force=force)
    except DbtError as error:
        raise click.ClickException(str(error)) from None
    console().print(f"dbt manifest ready: {manifest}")


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("dbt_args", nargs=-1, type=click.UNPROCESSED)
@warehouse_option
@target_option
def build(dbt_args: tuple[str, ...], warehouse: str | None, target: str | None) -> None:
    """Run `dbt build` (seeds, models, tests) on the warehouse. Extra arguments go to dbt, e.g. `cdp build --select staging`.

    Incremental: what earlier builds wrote is updated for the new raw rows (README "Incremental
    builds"). `cdp build --full-refresh` recomputes every model from the raw tables, keeping the
    profile id registry and the merge log.

    On a target whose dbt adapter cannot run Python models (Postgres, Spark) the predictive step
    fits them between two dbt invocations: everything up to the features, the step, then the rest.
    """
    from cdp.build import build_project
    from cdp.dbt import DbtError
    from cdp.experiments import ExperimentError, load_experiments
    from cli.alerts import evaluate_alerts

    chosen = _use_target(target)
    path = _use_warehouse(warehouse)
    try:
        load_experiments()  # dbt would only see the values: a typo in a share is caught here, by file and field
    except ExperimentError as error:
        raise click.ClickException(str(error)) from None
    try:
        build_project(list(dbt_args), chosen)
    except DbtError as error:
        raise click.ClickException(str(error)) from None
    # alerts.yml's segment rules on the sizes the build left (printed; never changes the exit code).
    # They read the DuckDB file: on another target they wait for the sync engine's warehouse interface.
    if chosen.engine == "duckdb":
        evaluate_alerts(console(), path, lambda alerter: alerter.after_build())
    else:
        console().print(f"[yellow]alerts not evaluated:[/] they read the DuckDB warehouse, not target {chosen.name}")


@main.command()
@click.option("--schema", "schemas", multiple=True, help="Only these schemas (repeatable).")
@warehouse_option
def tables(schemas: tuple[str, ...], warehouse: str | None) -> None:
    """List the warehouse's tables and views with their row counts."""
    require_duckdb_target("tables")
    path = _use_warehouse(warehouse)
    print_warehouse_tables(path, list(schemas) or None)


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("dagster_args", nargs=-1, type=click.UNPROCESSED)
@warehouse_option
def dev(dagster_args: tuple[str, ...], warehouse: str | None) -> None:
    """Open the Dagster UI (`dagster dev`) on this project, with the repository's Dagster instance.

    DAGSTER_HOME defaults to dagster_home/ (its dagster.yaml limits the warehouse pool to one
    writer). The UI listens on 127.0.0.1 unless you pass --host. Extra arguments go to
    `dagster dev`, e.g. `cdp dev -p 3001`.
    """
    import os

    from cdp.dbt import DbtError, fresh_manifest

    _use_warehouse(warehouse)
    os.environ.setdefault("DAGSTER_HOME", str(settings.REPO_ROOT / "dagster_home"))
    try:  # a broken project is reported here, in the terminal, rather than as a failed code location
        fresh_manifest()
    except DbtError as error:
        raise click.ClickException(str(error)) from None
    dagster = str(Path(sys.executable).with_name("dagster"))
    os.chdir(settings.REPO_ROOT)
    os.execv(dagster, [dagster, "dev", *dagster_dev_args(dagster_args)])


#: `dagster dev`'s options naming the webserver's host.
_HOST_OPTIONS = ("-h", "--host", "--dagit-host")


def dagster_dev_args(extra: tuple[str, ...]) -> list[str]:
    """`dagster dev` arguments: this repository's workspace, loopback unless the user names a host."""
    names_host = any(arg in _HOST_OPTIONS or arg.startswith(tuple(f"{o}=" for o in _HOST_OPTIONS)) for arg in extra)
    return ["-w", "workspace.yaml", *([] if names_host else ["-h", "127.0.0.1"]), *extra]


@main.command("identity-report")
@warehouse_option
def identity_report(warehouse: str | None) -> None:
    """Score identity resolution against the generator's ground truth (pairwise precision, recall, F1).

    Needs a warehouse filled by `cdp generate` and built by `cdp build`.
    """
    from cdp.identity_accuracy import score

    require_duckdb_target("identity-report")
    path = _use_warehouse(warehouse)
    if not path.exists():
        raise click.ClickException(f"No warehouse at {path}. Run `cdp generate` and `cdp build` first.")
    try:
        report = score(path)
    except Exception as error:  # duckdb.CatalogException and friends: say what is missing
        raise click.ClickException(
            f"Cannot score {path}: {error}. The warehouse needs ground_truth (cdp generate) and the dbt models (cdp build)."
        ) from None
    accuracy = table(f"Identity resolution accuracy — {path.name}")
    accuracy.add_column("measure")
    accuracy.add_column("value", justify="right")
    for name, value in report.rows():
        accuracy.add_row(name, value)
    print_table(accuracy)
    per_table = table("Records resolved, by source table")
    per_table.add_column("table")
    per_table.add_column("records", justify="right")
    per_table.add_column("resolved", justify="right")
    for name, records, resolved in report.by_table:
        per_table.add_row(name, f"{records:,}", f"{resolved / max(records, 1):.2%}")
    print_table(per_table)


def _register_subcommands() -> None:
    """Commands that live in their own modules."""
    from cli.alerts import alerts_command
    from cli.demo import demo
    from cli.experiments import lift_command
    from cli.privacy import forget_command, privacy_group
    from cli.segments import segments
    from cli.suppress import suppress
    from cli.syncs import sandbox_command, sync_command, syncs_command

    main.add_command(demo)
    main.add_command(lift_command)
    main.add_command(segments)
    main.add_command(sync_command)
    main.add_command(syncs_command)
    main.add_command(sandbox_command)
    main.add_command(alerts_command)
    main.add_command(suppress)
    main.add_command(forget_command)
    main.add_command(privacy_group)


_register_subcommands()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
