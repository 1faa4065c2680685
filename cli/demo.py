"""`cdp demo`: the main job end to end on a small sample, syncing to the local sandboxes."""

from __future__ import annotations

from pathlib import Path

import click

from cli.console import console, print_table, print_warehouse_tables, table
from cli.options import require_duckdb_target, warehouse_option
from cli.options import use_warehouse as _use_warehouse

DEMO_PEOPLE = 2_000
#: dbt_project/selectors.yml: what to rebuild after a manual segment changed.
MANUAL_SEGMENTS_SELECTOR = "refresh_manual_segments"


@click.command()
@click.option(
    "--people", type=click.IntRange(min=1), default=DEMO_PEOPLE, show_default=True, help="How many people to simulate."
)
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed.")
@warehouse_option
def demo(people: int, seed: int, warehouse: str | None) -> None:
    """The main job end to end: generate a small data set, build every dbt model, show what
    was built, and sync audiences to local emulators of every destination platform."""
    from cdp.dbt import DbtError, run_dbt
    from cdp.sample_data.generator import GeneratorConfig
    from cdp.sample_data.generator import generate as run_generator

    require_duckdb_target("demo")
    path = _use_warehouse(warehouse)
    out = console()
    out.rule("1. Generate sample data")
    summary = run_generator(GeneratorConfig(people=people, seed=seed), warehouse=path, progress=True)
    out.print(f"{summary.people:,} people, {sum(summary.rows_by_table.values()):,} rows in {summary.seconds:.1f}s")
    out.rule("2. dbt build")
    try:
        run_dbt(["build"], echo=False)
    except DbtError as error:
        raise click.ClickException(str(error)) from None
    out.print("dbt build passed (seeds, models and tests).")
    out.rule("3. A manual segment: the VIP list")
    vip_count = _create_demo_vip_list(path)
    try:
        run_dbt(["build", "--selector", MANUAL_SEGMENTS_SELECTOR], echo=False)
    except DbtError as error:
        raise click.ClickException(str(error)) from None
    out.print(f"`vip` holds the {vip_count} customers with the highest lifetime value (cdp segments show vip).")
    out.rule("4. What was built")
    print_warehouse_tables(path, None, title=f"Demo warehouse {path}")
    _print_segments(path)
    out.rule("5. Reverse ETL: every sync to the local platform sandboxes")
    _demo_syncs(path)


def _demo_syncs(path: Path) -> None:
    """Run every shipped sync twice against the local sandboxes: the first run sends each
    audience, the second finds nothing changed and sends nothing."""
    import os

    from cdp.warehouse import connect
    from cli.syncs import load_current_syncs
    from destinations import state
    from destinations.engine import run_sync
    from destinations.registry import destination_connector
    from destinations.sandbox import SandboxServer, demo_environment, emulators

    # the sandboxes are new each demo, so the syncs start from empty state too
    with connect(path) as con:
        state.reset(con)
    with SandboxServer(emulators()) as server:
        os.environ.update(demo_environment(server.ready_document()))
        syncs = load_current_syncs()
        runs = table(f"Syncs (sandboxes on {server.origin})")
        columns = ("sync", "destination", "mode", "run", "status", "add", "update", "remove", "rejected", "excluded")
        for column in (*columns, "confirmed", "coverage"):
            runs.add_column(
                column, justify="left" if column in ("sync", "destination", "mode", "status", "coverage") else "right"
            )
        for name, sync in sorted(syncs.items()):
            for run in (1, 2):
                result = run_sync(sync, warehouse=path, connect_destination=destination_connector())
                plan = result.plan
                runs.add_row(
                    name,
                    sync.destination,
                    sync.mode,
                    str(run),
                    result.status,
                    f"{plan.adds:,}",
                    f"{plan.updates:,}",
                    f"{plan.removes:,}",
                    f"{result.rejected:,}",
                    f"{plan.excluded_consent + plan.excluded_holdout:,}",
                    f"{result.confirmed:,}",
                    "; ".join(plan.coverage_lines()) if run == 1 else "",
                )
        print_table(runs)
        _print_audiences(server)
        console().print("Every run is in cdp_sync.runs, every change in cdp_sync.changes; `cdp syncs` lists them.")


def _print_audiences(server) -> None:
    """What each sandbox now holds, per list or audience, as the platform stores it."""
    holds = table("What each platform now holds")
    holds.add_column("platform")
    holds.add_column("list / audience")
    holds.add_column("records", justify="right")
    for prefix, emulator in server.emulators.items():
        for audience, count in emulator.audience_sizes().items():
            holds.add_row(prefix, audience, f"{count:,}")
    print_table(holds)


DEMO_VIP_SIZE = 10


def _create_demo_vip_list(path: Path) -> int:
    """The shipped manual segment: `vip`, the top customers by lifetime value (recreated each demo)."""
    from cdp import manual_segments as store

    with store.open_warehouse(path, read_only=False) as con:
        if any(summary.segment_name == "vip" for summary in store.list_segments(con)):
            store.delete_segment(con, "vip", actor="cdp demo")
        store.create_segment(
            con,
            "vip",
            description="Hand-picked VIP customers (demo: top lifetime value).",
            owner="crm-team",
            actor="cdp demo",
        )
        top = [
            row[0]
            for row in con.execute(
                "select profile_id from profile_attributes order by lifetime_value desc, profile_id limit ?",
                [DEMO_VIP_SIZE],
            ).fetchall()
        ]
        store.add_members(con, "vip", top, actor="cdp demo")
    return len(top)


def _print_segments(path: Path) -> None:
    from cdp.warehouse import connect

    with connect(path, read_only=True) as con:
        rows = con.execute(
            "select segment_name, segment_type, member_count, owner from segments order by segment_type, segment_name"
        ).fetchall()
    listing = table("Segments")
    for column in ("segment", "type", "members", "owner"):
        listing.add_column(column, justify="right" if column == "members" else "left")
    for name, segment_type, members, owner in rows:
        listing.add_row(name, segment_type, f"{members:,}", owner or "")
    print_table(listing)
