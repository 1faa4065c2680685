"""`cdp alerts`, and the alert evaluation `cdp sync` and `cdp build` run when they finish.

Thin wiring: destinations/alerts/ judges, remembers and delivers. An alert problem (a
broken alerts.yml, a channel that is down, a busy warehouse) is printed but never changes
what the command did or its exit code: the sync or the build stands on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import fields
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from cli.console import console as _console
from cli.console import table as _table
from cli.options import use_warehouse as _use_warehouse
from cli.options import warehouse_option


def evaluate_alerts(
    console: Console, warehouse: Path, evaluate: Callable, *, known_syncs: Iterable[str] | None = None
) -> None:
    """Run ``evaluate(alerter)`` with the configured rules and print what it did; never raises."""
    from cdp.warehouse import WarehouseBusyError
    from destinations.alerts import AlertConfigError, Alerter, load_alerts
    from destinations.warehouse import WarehouseError
    from destinations.warehouse.locations import sync_locations

    try:
        config = load_alerts()
        if not config.enabled:
            return
        if known_syncs is not None:
            config.check_syncs(known_syncs)
        data, store = sync_locations(warehouse)  # CDP_TARGET and CDP_SYNC_STATE
        report = evaluate(Alerter(config, data, state_store=store))
    except (AlertConfigError, WarehouseError) as error:
        console.print(f"[red]alerts not evaluated:[/] {escape(str(error))}")
        return
    except WarehouseBusyError:
        console.print("[yellow]alerts not evaluated:[/] another process is writing the warehouse; the next run judges")
        return
    for line in report.lines():
        style = "yellow" if line.startswith("alert pending") else "magenta"
        console.print(f"[{style}]{escape(line)}[/]")


@click.command("alerts")
@warehouse_option
def alerts_command(warehouse: str | None) -> None:
    """Check alerts.yml and list its channels, its rules and the alerts open in the warehouse.

    The file is alerts.yml at the repository root, or the one CDP_ALERTS names (CDP_ALERTS=off:
    none). Rules are judged after every `cdp sync`, after `cdp build`, and in Dagster.
    """
    from cli.syncs import load_current_syncs
    from destinations import state
    from destinations.alerts import AlertConfigError, load_alerts
    from destinations.base import DestinationError
    from destinations.definitions import SyncDefinitionError
    from destinations.warehouse.locations import sync_locations

    path = _use_warehouse(warehouse)
    _, store = sync_locations(path)
    console = _console()
    try:
        config = load_alerts()
        config.check_syncs(load_current_syncs())
    except (AlertConfigError, SyncDefinitionError, DestinationError) as error:
        raise click.ClickException(str(error)) from None
    if config.path is None:
        console.print("No alerts: no alerts.yml (or CDP_ALERTS=off).")
        return
    console.print(f"alerts file: {config.path} — OK")
    channels = _table("Channels")
    for column in ("channel", "type"):
        channels.add_column(column)
    for channel in config.channels.values():
        channels.add_row(channel.name, channel.type)
    console.print(channels)
    rules = _table("Rules")
    for column in ("rule", "kind", "threshold", "watches", "channels", "resolved notice"):
        rules.add_column(column)
    for rule in config.rules.values():
        threshold = ", ".join(
            f"{f.name} {getattr(rule.options, f.name)}"
            for f in fields(rule.options)
            if getattr(rule.options, f.name) is not None
        )
        rules.add_row(
            rule.name,
            rule.kind,
            threshold or "—",
            ", ".join(rule.subjects) or f"every {rule.scope}",
            ", ".join(rule.channels),
            "yes" if rule.notify_resolved else "no",
        )
    console.print(rules)
    if not store.exists():
        return
    with store.read_only().open() as con:
        open_alerts = state.open_alerts(con)
    listing = _table(f"Open alerts ({len(open_alerts)})")
    for column in ("rule", "subject", "since", "last seen", "summary"):
        listing.add_column(column)
    for rule_name, subject, summary, first_seen, last_seen in open_alerts:
        listing.add_row(
            rule_name, subject, f"{first_seen:%Y-%m-%d %H:%M}", f"{last_seen:%Y-%m-%d %H:%M}", escape(summary)
        )
    console.print(listing)
