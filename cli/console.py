"""How every `cdp` command prints: one console set-up, one table style.

At a terminal, output takes the terminal's width; piped or captured (tests, `| less`), it is
wide enough that no profile id or sync name is cut.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich import box
from rich.console import Console
from rich.table import Table

PIPED_WIDTH = 200


def console() -> Console:
    """The console a command prints to."""
    terminal = Console(highlight=False)
    return terminal if terminal.is_terminal else Console(highlight=False, width=PIPED_WIDTH)


def table(title: str | None = None) -> Table:
    """A plain table in the house style (title on the left, a rule under the header)."""
    return Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")


def print_table(rendered: Table) -> None:
    console().print(rendered)


def print_warehouse_tables(path: Path, schemas: list[str] | None, title: str | None = None) -> None:
    """Every table and view in the warehouse with its row count (read-only)."""
    from cdp.warehouse import connect, table_row_counts

    if not path.exists():
        raise click.ClickException(f"No warehouse at {path}. Run `cdp generate` (or `cdp demo`) first.")
    with connect(path, read_only=True) as con:
        counts = table_row_counts(con, schemas)
    listing = table(title or f"Warehouse {path}")
    listing.add_column("schema")
    listing.add_column("table")
    listing.add_column("rows", justify="right")
    for schema, name, rows in counts:
        listing.add_row(schema, name, f"{rows:,}")
    print_table(listing)
