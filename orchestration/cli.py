"""`cdp`: the command line handle on the project.

Every command works against the warehouse named by CDP_WAREHOUSE (or --warehouse).
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from cdp import settings
from orchestration.cli_options import use_warehouse as _use_warehouse, warehouse_option

console = Console()

DEMO_PEOPLE = 2_000


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Warehouse-native composable CDP: generate data, build profiles and segments, sync audiences."""


@main.command()
@click.option("--people", type=click.IntRange(min=1), default=10_000, show_default=True, help="How many people to simulate.")
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed; the same seed gives the same data.")
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    default="2026-11-01",
    show_default=True,
    help="The 'now' of the simulated world: no event is later than this.",
)
@click.option("--chunk-size", type=click.IntRange(min=100), default=20_000, show_default=True, help="People generated per chunk (bounds memory).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@warehouse_option
def generate(people: int, seed: int, as_of: datetime, chunk_size: int, quiet: bool, warehouse: str | None) -> None:
    """Fill every raw table of the data contract (schema `raw`) with realistic, messy sample data.

    Also writes schema `ground_truth`: the real person behind every source record,
    for scoring identity resolution.
    """
    from cdp.sample_data.generator import GeneratorConfig, generate as run_generator

    path = _use_warehouse(warehouse)
    summary = run_generator(
        GeneratorConfig(people=people, seed=seed, as_of=as_of, chunk_size=chunk_size),
        warehouse=path,
        progress=not quiet,
    )
    table = Table(title=f"Generated {summary.people:,} people into {path} in {summary.seconds:.1f}s")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in summary.rows_by_table.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)


@main.command()
def prepare() -> None:
    """Parse the dbt project into target/manifest.json (Dagster loads its assets from it)."""
    from cdp.dbt import run_dbt

    _use_warehouse(None)
    run_dbt(["parse", "--quiet"])
    console.print(f"dbt manifest ready: {settings.DBT_PROJECT_DIR / 'target' / 'manifest.json'}")


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("dbt_args", nargs=-1, type=click.UNPROCESSED)
@warehouse_option
def build(dbt_args: tuple[str, ...], warehouse: str | None) -> None:
    """Run `dbt build` (seeds, models, tests) on the warehouse. Extra arguments go to dbt, e.g. `cdp build --select staging`."""
    from cdp.dbt import DbtError, run_dbt

    _use_warehouse(warehouse)
    try:
        run_dbt(["build", *dbt_args])
    except DbtError as error:
        raise click.ClickException(str(error)) from None


@main.command()
@click.option("--schema", "schemas", multiple=True, help="Only these schemas (repeatable).")
@warehouse_option
def tables(schemas: tuple[str, ...], warehouse: str | None) -> None:
    """List the warehouse's tables and views with their row counts."""
    path = _use_warehouse(warehouse)
    _print_tables(path, list(schemas) or None)


def _print_tables(path: Path, schemas: list[str] | None, title: str | None = None) -> None:
    from cdp.warehouse import connect, table_row_counts

    if not path.exists():
        raise click.ClickException(f"No warehouse at {path}. Run `cdp generate` (or `cdp demo`) first.")
    with connect(path, read_only=True) as con:
        counts = table_row_counts(con, schemas)
    table = Table(title=title or f"Warehouse {path}")
    table.add_column("schema")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for schema, name, rows in counts:
        table.add_row(schema, name, f"{rows:,}")
    console.print(table)


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("dagster_args", nargs=-1, type=click.UNPROCESSED)
@warehouse_option
def dev(dagster_args: tuple[str, ...], warehouse: str | None) -> None:
    """Open the Dagster UI (`dagster dev`) on this project, with the repository's Dagster instance.

    DAGSTER_HOME defaults to dagster_home/ (its dagster.yaml limits the warehouse pool to one
    writer). Extra arguments go to `dagster dev`, e.g. `cdp dev -p 3001`.
    """
    import os

    from cdp.dbt import run_dbt

    _use_warehouse(warehouse)
    os.environ.setdefault("DAGSTER_HOME", str(settings.REPO_ROOT / "dagster_home"))
    run_dbt(["parse", "--quiet"], echo=False)
    dagster = str(Path(sys.executable).with_name("dagster"))
    os.chdir(settings.REPO_ROOT)
    os.execv(dagster, [dagster, "dev", "-w", "workspace.yaml", *dagster_args])


@main.command("identity-report")
@warehouse_option
def identity_report(warehouse: str | None) -> None:
    """Score identity resolution against the generator's ground truth (pairwise precision, recall, F1).

    Needs a warehouse filled by `cdp generate` and built by `cdp build`.
    """
    from cdp.identity_accuracy import score

    path = _use_warehouse(warehouse)
    if not path.exists():
        raise click.ClickException(f"No warehouse at {path}. Run `cdp generate` and `cdp build` first.")
    try:
        report = score(path)
    except Exception as error:  # duckdb.CatalogException and friends: say what is missing
        raise click.ClickException(
            f"Cannot score {path}: {error}. The warehouse needs ground_truth (cdp generate) and the dbt models (cdp build)."
        ) from None
    table = Table(title=f"Identity resolution accuracy — {path.name}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in report.rows():
        table.add_row(name, value)
    console.print(table)
    per_table = Table(title="Records resolved, by source table")
    per_table.add_column("table")
    per_table.add_column("records", justify="right")
    per_table.add_column("resolved", justify="right")
    for name, records, resolved in report.by_table:
        per_table.add_row(name, f"{records:,}", f"{resolved / max(records, 1):.2%}")
    console.print(per_table)


@main.command()
@click.option("--people", type=click.IntRange(min=1), default=DEMO_PEOPLE, show_default=True, help="How many people to simulate.")
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed.")
@warehouse_option
def demo(people: int, seed: int, warehouse: str | None) -> None:
    """The main job end to end: generate a small data set, build every dbt model, show what
    was built, and sync every audience to a local webhook sandbox."""
    from cdp.dbt import DbtError, run_dbt
    from cdp.sample_data.generator import GeneratorConfig, generate as run_generator

    path = _use_warehouse(warehouse)
    console.rule("1. Generate sample data")
    summary = run_generator(GeneratorConfig(people=people, seed=seed), warehouse=path, progress=True)
    console.print(f"{summary.people:,} people, {sum(summary.rows_by_table.values()):,} rows in {summary.seconds:.1f}s")
    console.rule("2. dbt build")
    try:
        run_dbt(["build"], echo=False)
    except DbtError as error:
        raise click.ClickException(str(error)) from None
    console.print("dbt build passed (seeds, models and tests).")
    console.rule("3. A manual segment: the VIP list")
    vip_count = _create_demo_vip_list(path)
    try:
        run_dbt(["build", "--select", "manual_segments+", "segments", "segment_membership", "segment_membership_history"], echo=False)
    except DbtError as error:
        raise click.ClickException(str(error)) from None
    console.print(f"`vip` holds the {vip_count} customers with the highest lifetime value (cdp segments show vip).")
    console.rule("4. What was built")
    _print_tables(path, None, title=f"Demo warehouse {path}")
    _print_segments(path)
    console.rule("5. Reverse ETL: every sync to the local webhook sandbox")
    _demo_syncs(path)


def _demo_syncs(path: Path) -> None:
    """Run every shipped sync twice against a local webhook receiver: the first run sends
    the audience, the second finds nothing changed and sends nothing."""
    import os

    from destinations.engine import run_sync
    from destinations.registry import destination_connector
    from destinations.sandbox.webhook import WebhookSandbox
    from orchestration.cli_syncs import load_current_syncs

    from cdp.warehouse import connect

    # the receiver is new each demo, so the syncs start from empty state too
    with connect(path) as con:
        con.execute("drop schema if exists cdp_sync cascade")
    with WebhookSandbox() as sandbox:
        os.environ["CDP_DEMO_WEBHOOK_URL"] = sandbox.url
        os.environ["CDP_DEMO_WEBHOOK_SECRET"] = sandbox.secret
        syncs = load_current_syncs()
        table = Table(title=f"Syncs (receiver {sandbox.url})")
        for column in ("sync", "mode", "run", "status", "add", "update", "remove", "excluded", "confirmed"):
            table.add_column(column, justify="left" if column in ("sync", "mode", "status") else "right")
        for name, sync in sorted(syncs.items()):
            for run in (1, 2):
                result = run_sync(sync, warehouse=path, connect_destination=destination_connector())
                plan = result.plan
                table.add_row(
                    name, sync.mode, str(run), result.status,
                    f"{plan.adds:,}", f"{plan.updates:,}", f"{plan.removes:,}",
                    f"{plan.excluded_consent + plan.excluded_holdout:,}", f"{result.confirmed:,}",
                )
        Console(width=max(console.width, 100)).print(table)
        console.print(
            f"The receiver holds {len(sandbox.state):,} records from {sandbox.applied:,} signed changes. "
            "Every run is in cdp_sync.runs, every change in cdp_sync.changes; `cdp syncs` lists them."
        )


DEMO_VIP_SIZE = 10


def _create_demo_vip_list(path: Path) -> int:
    """The shipped manual segment: `vip`, the top customers by lifetime value (recreated each demo)."""
    from cdp import manual_segments as store

    with store.open_warehouse(path, read_only=False) as con:
        if any(summary.segment_name == "vip" for summary in store.list_segments(con)):
            store.delete_segment(con, "vip", actor="cdp demo")
        store.create_segment(con, "vip", description="Hand-picked VIP customers (demo: top lifetime value).", owner="crm-team", actor="cdp demo")
        top = [row[0] for row in con.execute(
            "select profile_id from profile_attributes order by lifetime_value desc, profile_id limit ?", [DEMO_VIP_SIZE]
        ).fetchall()]
        store.add_members(con, "vip", top, actor="cdp demo")
    return len(top)


def _print_segments(path: Path) -> None:
    from cdp.warehouse import connect

    with connect(path, read_only=True) as con:
        rows = con.execute(
            "select segment_name, segment_type, member_count, owner from segments order by segment_type, segment_name"
        ).fetchall()
    table = Table(title="Segments")
    for column in ("segment", "type", "members", "owner"):
        table.add_column(column, justify="right" if column == "members" else "left")
    for name, segment_type, members, owner in rows:
        table.add_row(name, segment_type, f"{members:,}", owner or "")
    console.print(table)


def _register_subcommands() -> None:
    """Command groups that live in their own modules."""
    from orchestration.cli_segments import segments
    from orchestration.cli_syncs import sandbox_command, sync_command, syncs_command

    main.add_command(segments)
    main.add_command(sync_command)
    main.add_command(syncs_command)
    main.add_command(sandbox_command)


_register_subcommands()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
