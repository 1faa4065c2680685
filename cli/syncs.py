"""`cdp sync NAME` and `cdp syncs`: run one reverse-ETL sync, list them all.

Thin wiring: the engine (destinations/engine.py) does the work and writes every run to
the warehouse (destinations/state.py: runs, changes); this module shows progress and the outcome.

Exit codes of `cdp sync`: 0 succeeded or dry run (and a pause or resume recorded); 1 failed
or partly failed (the failed records are retried next run); 3 stopped by the safety guard
(nothing sent; review the plan, then --force); 4 the sync is paused (nothing sent).
"""

from __future__ import annotations

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from cli.console import console as _console
from cli.console import table as _table
from cli.options import use_warehouse as _use_warehouse
from cli.options import warehouse_option

EXIT_CODES = {"succeeded": 0, "dry_run": 0, "partial": 1, "failed": 1, "stopped": 3, "paused": 4}
#: how long a pause or resume waits for a writer that holds the warehouse before giving up
PAUSE_WAIT_SECONDS = 10.0


def load_current_syncs():
    """Sync definitions from a manifest that reflects the files on disk."""
    from cdp.dbt import fresh_manifest
    from destinations.registry import load_syncs

    return load_syncs(fresh_manifest())


@click.command("sync")
@click.argument("name")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Plan only: write the plan to cdp_sync.plan__NAME for review; send nothing, change no state.",
)
@click.option(
    "--force", is_flag=True, help="Send even if the safety guard would stop the run (mass removal or empty segment)."
)
@click.option(
    "--full-resync",
    is_flag=True,
    help="Re-send every desired record, not only the changes (destination state drifted).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--pause",
    "pause",
    flag_value="pause",
    default=None,
    help="Pause the sync instead of running it: every run (CLI, Dagster, schedules) records `paused` and sends "
    "nothing until --resume.",
)
@click.option("--resume", "pause", flag_value="resume", help="Resume a paused sync (it runs again from the next run).")
@click.option("--reason", default=None, help="Why it is paused or resumed (kept with the change; no personal data).")
@warehouse_option
def sync_command(
    name: str,
    dry_run: bool,
    force: bool,
    full_resync: bool,
    quiet: bool,
    pause: str | None,
    reason: str | None,
    warehouse: str | None,
) -> None:
    """Run the sync NAME once: plan the changes in the warehouse, send them, record the outcome.

    A sync is a dbt exposure with a `meta.sync` block (dbt_project/models/syncs/).
    Only records the destination confirms advance the sync's state; failed records are
    retried by the next run. With --pause or --resume, record that instead of running.
    """
    from cdp.warehouse import WarehouseBusyError
    from destinations.alerts import utc_now
    from destinations.base import DestinationError
    from destinations.definitions import SyncDefinitionError
    from destinations.engine import SyncError, run_sync
    from destinations.registry import destination_connector, get_sync
    from destinations.warehouse import WarehouseError
    from destinations.warehouse.locations import sync_locations

    if pause is None and reason is not None:
        raise click.UsageError("--reason goes with --pause or --resume")
    if pause is not None and (dry_run or force or full_resync):
        raise click.UsageError(
            f"--{pause} records a {pause}; it does not run the sync (drop --dry-run/--force/--full-resync)"
        )
    path = _use_warehouse(warehouse)
    console = _console()
    since, syncs = utc_now(), None
    try:
        data, store = sync_locations(path)  # CDP_TARGET and CDP_SYNC_STATE
        syncs = load_current_syncs()
        definition = get_sync(syncs, name)
        if pause is not None:
            _set_paused(console, definition, store, pause == "pause", reason)
            return
        with _ProgressBar(console, quiet, f"{name}") as progress:
            result = run_sync(
                definition,
                warehouse=data,
                state_store=store,
                connect_destination=destination_connector(),
                dry_run=dry_run,
                force=force,
                full_resync=full_resync,
                progress=progress,
                on_plan=lambda plan: _print_coverage(console, plan),
            )
    except (SyncDefinitionError, SyncError, DestinationError, WarehouseBusyError, WarehouseError) as error:
        if syncs is not None and name in syncs:  # the run may have recorded its failure: judge it
            _evaluate_alerts(console, name, path, since, syncs)
        raise click.ClickException(str(error)) from None
    _print_result(console, result)
    _evaluate_alerts(console, name, path, since, syncs)
    raise SystemExit(EXIT_CODES.get(result.status, 1))


def _set_paused(console: Console, definition, store, paused: bool, reason: str | None) -> None:
    """Record a pause or resume in the sync state store (destinations.state owns the table)."""
    from datetime import UTC, datetime

    from destinations import state

    name = definition.name
    with store.waiting(PAUSE_WAIT_SECONDS).open() as con:
        before = state.set_paused(
            con,
            name,
            paused=paused,
            reason=reason,
            changed_by=operator(),
            now=datetime.now(UTC).replace(tzinfo=None),
        )
    if paused:
        console.print(
            f"[yellow]{name}: paused[/]"
            + (" (it was already paused; reason updated)" if before else "")
            + f" — every run records `paused` and sends nothing until `cdp sync {name} --resume`."
        )
    else:
        console.print(
            f"[green]{name}: resumed[/]" + ("" if before else " (it was not paused)") + " — the next run sends."
        )
    if definition.paused:
        console.print(
            f"[yellow]note:[/] {name} also has `paused: true` in its definition; that pause stays until removed."
        )


def operator() -> str:
    """Who made a change (a pause, a manual list edit, a suppression, a forget request): the login
    name, for the audit trail."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (some containers)
        return "unknown"


def _evaluate_alerts(console: Console, name: str, path, since, syncs) -> None:
    """The sync's alert rules on the runs this command made (printed; never changes the exit code)."""
    from cli.alerts import evaluate_alerts

    evaluate_alerts(console, path, lambda alerter: alerter.after_sync(name, since), known_syncs=syncs)


class _ProgressBar:
    """A rich progress bar fed by the engine's (done, total) callback; silent when quiet."""

    def __init__(self, console: Console, quiet: bool, label: str):
        self.progress = (
            None
            if quiet
            else Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
        )
        self.label = label
        self.task = None

    def __enter__(self):
        if self.progress is None:
            return None
        self.progress.start()
        self.task = self.progress.add_task(f"sending {self.label}", total=None)
        return self.update

    def update(self, done: int, total: int) -> None:
        self.progress.update(self.task, completed=done, total=total)

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()


def _print_coverage(console: Console, plan) -> None:
    """Before anything is sent: how many desired records carry each identifier."""
    if plan.identifier_coverage:
        console.print("identifier coverage: " + "; ".join(plan.coverage_lines()))


def _print_result(console: Console, result) -> None:
    from destinations.summary import OUTCOME_COUNTS, PLAN_COUNTS, format_report

    plan = result.plan
    style = {"succeeded": "green", "dry_run": "cyan", "partial": "yellow"}.get(result.status, "red")
    console.print(f"[{style}]{result.sync_name}: {result.status}[/] — {result.message}")
    if plan is None:
        return
    table = _table(f"run {result.run_id} ({result.seconds:.1f}s)")
    table.add_column("")
    table.add_column("records", justify="right")
    for count in PLAN_COUNTS:
        table.add_row(count.label, f"{count.of(plan):,}")
    for count in OUTCOME_COUNTS:
        table.add_row(count.label, f"{count.of(result):,}")
    console.print(table)
    if result.destination_report:
        console.print(f"platform: {format_report(result.destination_report)}")
    for error in result.errors:
        console.print(f"  [red]error:[/] {error}")


@click.command("syncs")
@warehouse_option
def syncs_command(warehouse: str | None) -> None:
    """List every sync with its segment, destination, mode, schedule and last run."""
    from destinations import state
    from destinations.base import DestinationError
    from destinations.definitions import SyncDefinitionError
    from destinations.summary import OUTCOME_COUNTS, format_report
    from destinations.warehouse.locations import sync_locations

    path = _use_warehouse(warehouse)
    _, store = sync_locations(path)
    try:
        syncs = load_current_syncs()
    except (SyncDefinitionError, DestinationError) as error:
        raise click.ClickException(str(error)) from None
    last_runs: dict[str, state.LastRun] = {}
    held: dict[str, int] = {}
    pauses: dict[str, state.Pause] = {}
    if store.exists():
        with store.read_only().open() as con:
            last_runs = state.last_runs(con)
            held = state.held_counts(con)
            pauses = state.pauses(con)
    outcomes = "/".join(count.name for count in OUTCOME_COUNTS)
    table = _table("Syncs")
    columns = (
        "sync",
        "segment",
        "destination",
        "mode",
        "schedule",
        "paused",
        "held",
        "last run",
        "status",
        outcomes,
        "platform",
    )
    for column in columns:
        table.add_column(column, justify="right" if column == "held" else "left")
    for name, definition in sorted(syncs.items()):
        run = last_runs.get(name)
        table.add_row(
            name,
            definition.segment,
            definition.destination,
            definition.mode,
            definition.schedule or "manual",
            _paused_cell(definition, pauses.get(name)),
            f"{held.get(name, 0):,}",
            f"{run.started_at:%Y-%m-%d %H:%M}" if run else "never",
            run.status if run else "",
            "/".join(str(run.counts[count.name]) for count in OUTCOME_COUNTS) if run else "",
            format_report(run.destination_report) if run else "",
        )
    _console().print(table)


def _paused_cell(definition, pause) -> str:
    """'' when the sync runs; otherwise why it is paused."""
    reasons = (["in definition"] if definition.paused else []) + ([pause.describe()] if pause else [])
    return "paused " + "; ".join(reasons) if reasons else ""


@click.command("sandbox")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port to listen on.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind. Loopback by default; every emulator still demands its platform's credentials.",
)
@click.option(
    "--ready-file",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Once listening, write a JSON document here: each platform's base URL, the sandbox credentials, "
    "and the lists and audiences it starts with.",
)
@click.option("--quiet", is_flag=True, help="Do not log requests.")
def sandbox_command(port: int, host: str, ready_file: str | None, quiet: bool) -> None:
    """Serve a local emulator of every destination platform, in the foreground.

    Each platform answers under its own path prefix on one port (webhook, mailchimp, klaviyo,
    meta, datamanager, googleads; slack and alerts receive alerts), enforcing the platform's rules. Export the variables it
    prints in another shell (the demo connections in destinations.yml read them), then run
    `cdp sync NAME`.
    """
    import json
    import signal
    import threading
    from pathlib import Path

    from destinations.sandbox import SandboxServer, demo_environment, emulators

    with SandboxServer(emulators(), host=host, port=port, quiet=quiet) as server:
        ready = server.ready_document()
        if ready_file:
            target = Path(ready_file)
            partial = target.with_name(target.name + ".partial")
            partial.write_text(json.dumps(ready, indent=2))
            partial.replace(target)  # appears whole: a reader polling for it never sees half a document
        for variable, value in demo_environment(ready).items():
            click.echo(f"export {variable}={value}")
        click.echo(f"Serving {', '.join(ready['platforms'])} on {server.origin}; Ctrl-C to stop.")
        # SIGTERM (kill, a service manager) stops it as Ctrl-C does; so does SIGINT unless it was
        # ignored at start (a script's background job), which Python then leaves ignored
        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
        click.echo("Stopped.")
