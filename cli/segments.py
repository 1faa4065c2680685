"""`cdp segments …`: manual segments, named lists of profiles curated by a person.

The commands are thin: the cdp.manual_segments package does the work (one transaction
per command). Reads open the warehouse read-only; a write fails fast, with a message, while
another process (a dbt build) holds the DuckDB lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import IO

import click

from cdp import manual_segments as store
from cdp.warehouse import WarehouseBusyError
from cli.console import print_table as _print_table
from cli.console import table as _table
from cli.options import require_duckdb_target, warehouse_option
from cli.options import use_warehouse as _use_warehouse
from cli.syncs import operator

NEXT_BUILD_HINT = "`segments` and `segment_membership` pick this up at the next `cdp build`."


def _actor(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not value.strip():
        raise click.BadParameter("must name who is making the change.")
    return value.strip()


by_option = click.option(
    "--by",
    "actor",
    default=operator,
    callback=_actor,
    show_default="the OS user",
    help="Who is making the change, for the audit log.",
)

from_file_option = click.option(
    "--from-file",
    "from_file",
    type=click.File("r"),
    default=None,
    help="Read more values from this file, one per line ('-' for stdin; blank lines and lines starting with # are skipped).",
)

email_option = click.option(
    "--email",
    "by_email",
    is_flag=True,
    help="The values are email addresses: find each one's profile through profile_identifiers. "
    "Addresses are never printed or logged.",
)


def _friendly_errors(command: Callable) -> Callable:
    """Turn store errors and a busy warehouse into a clean `Error: …` and exit code 1."""

    @wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (store.ManualSegmentError, WarehouseBusyError) as error:
            raise click.ClickException(str(error)) from None

    return wrapper


@contextmanager
def _warehouse(warehouse: str | None, *, read_only: bool) -> Iterator:
    require_duckdb_target("segments")
    path = _use_warehouse(warehouse)
    with store.open_warehouse(path, read_only=read_only) as con:
        yield con


def _values(arguments: tuple[str, ...], from_file: IO[str] | None) -> list[str]:
    values = [value.strip() for value in arguments]
    if from_file is not None:
        for line in from_file:
            line = line.strip()
            if line and not line.startswith("#"):
                values.append(line)
    return [value for value in values if value]


def _profile_ids(con, values: list[str], by_email: bool, verb: str) -> list[str]:
    """The values as profile ids; with --email, look each address up (positions, never addresses, in errors)."""
    if not values:
        raise click.UsageError(f"Nothing to {verb}: give profile ids as arguments or with --from-file.")
    if not by_email:
        return values
    found = store.profile_ids_for_emails(con, values)
    missing = [str(position) for position, profile_id in enumerate(found, start=1) if profile_id is None]
    if missing:
        raise click.ClickException(
            f"{len(missing)} of {len(values)} email addresses match no profile: #{', #'.join(missing[:20])}"
            f"{' …' if len(missing) > 20 else ''} (positions in the order given; addresses are not shown). "
            f"Nothing was {'added' if verb == 'add' else 'removed'}."
        )
    return [profile_id for profile_id in found if profile_id is not None]


def _say_resolved(change: store.MembershipChange) -> None:
    for resolved in change.resolved:
        click.echo(f"{resolved.given} was merged into {resolved.profile_id}: using {resolved.profile_id}.")


@click.group()
def segments() -> None:
    """Manual segments: named lists of profiles curated by a person.

    They live in the warehouse (schema manual_segments, every change in its audit_log) and
    appear in `segments` and `segment_membership` like any other segment after the next
    `cdp build`. Segment names are lower snake case and unique across all segments.
    """


@segments.command()
@click.argument("name")
@click.option("--description", default=None, help="What the list is for.")
@click.option("--owner", default=None, help="Person or team answerable for it (default: --by).")
@by_option
@warehouse_option
@_friendly_errors
def create(name: str, description: str | None, owner: str | None, actor: str, warehouse: str | None) -> None:
    """Create an empty manual segment NAME (lower snake case, e.g. vip_customers)."""
    with _warehouse(warehouse, read_only=False) as con:
        store.create_segment(con, name, description=description, owner=owner, actor=actor)
    click.echo(
        f"Created manual segment {name!r} (owner {owner or actor}). Add profiles with `cdp segments add {name} PROFILE_ID…`."
    )


@segments.command()
@click.argument("name")
@click.argument("values", nargs=-1, metavar="[PROFILE_ID]...")
@from_file_option
@email_option
@by_option
@warehouse_option
@_friendly_errors
def add(
    name: str, values: tuple[str, ...], from_file: IO[str] | None, by_email: bool, actor: str, warehouse: str | None
) -> None:
    """Add profiles to segment NAME, all or nothing.

    Profile ids that identity resolution merged away are replaced by the surviving id.
    If any id is unknown, nothing is added and the unknown ids are listed. Profiles that are
    already members are left as they are.
    """
    with _warehouse(warehouse, read_only=False) as con:
        ids = _profile_ids(con, _values(values, from_file), by_email, "add")
        change = store.add_members(
            con, name, ids, actor=actor, detail="given as an email address" if by_email else None
        )
        total = store.get_segment(con, name).member_count
    _say_resolved(change)
    unchanged = len(change.unchanged)
    if not change.changed:
        click.echo(
            f"Nothing changed: {'the profile is already a member' if unchanged == 1 else f'all {unchanged} profiles are already members'} "
            f"of {name!r}."
        )
        return
    if unchanged:
        click.echo(
            f"{store.plural(unchanged, 'profile')} already {'a member' if unchanged == 1 else 'members'}, unchanged: {store.format_ids(change.unchanged)}."
        )
    click.echo(f"Added {store.plural(len(change.changed), 'profile')} to {name!r} ({total} members). {NEXT_BUILD_HINT}")


@segments.command()
@click.argument("name")
@click.argument("values", nargs=-1, metavar="[PROFILE_ID]...")
@from_file_option
@email_option
@by_option
@warehouse_option
@_friendly_errors
def remove(
    name: str, values: tuple[str, ...], from_file: IO[str] | None, by_email: bool, actor: str, warehouse: str | None
) -> None:
    """Remove profiles from segment NAME, all or nothing.

    If any of them is not a member, nothing is removed and those ids are listed. A profile
    id merged away since it was added is found under the surviving id (and vice versa).
    """
    with _warehouse(warehouse, read_only=False) as con:
        ids = _profile_ids(con, _values(values, from_file), by_email, "remove")
        change = store.remove_members(con, name, ids, actor=actor)
        total = store.get_segment(con, name).member_count
    _say_resolved(change)
    click.echo(
        f"Removed {store.plural(len(change.changed), 'profile')} from {name!r} ({total} members left). {NEXT_BUILD_HINT}"
    )


@segments.command()
@click.argument("old_name")
@click.argument("new_name")
@by_option
@warehouse_option
@_friendly_errors
def rename(old_name: str, new_name: str, actor: str, warehouse: str | None) -> None:
    """Rename segment OLD_NAME to NEW_NAME, keeping its members and its history.

    The audit log keeps the old name on earlier rows. segment_membership_history is keyed by
    name: at the next build the stays under the old name close and new stays open under the
    new one. Syncs that use the old name must be pointed at the new one.
    """
    with _warehouse(warehouse, read_only=False) as con:
        moved = store.rename_segment(con, old_name, new_name, actor=actor)
    click.echo(f"Renamed {old_name!r} to {new_name!r} ({store.plural(moved, 'member')} kept). {NEXT_BUILD_HINT}")


@segments.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@by_option
@warehouse_option
@_friendly_errors
def delete(name: str, yes: bool, actor: str, warehouse: str | None) -> None:
    """Delete segment NAME and its members (the audit log keeps its history: `cdp segments history NAME`)."""
    if not yes:
        with _warehouse(warehouse, read_only=True) as con:
            members = store.get_segment(con, name).member_count
        click.confirm(f"Delete manual segment {name!r} and its {store.plural(members, 'member')}?", abort=True)
    with _warehouse(warehouse, read_only=False) as con:
        removed = store.delete_segment(con, name, actor=actor)
    click.echo(f"Deleted manual segment {name!r} ({store.plural(removed, 'member')} removed). {NEXT_BUILD_HINT}")


@segments.command("list")
@warehouse_option
@_friendly_errors
def list_(warehouse: str | None) -> None:
    """List the manual segments: name, members, owner, last update."""
    with _warehouse(warehouse, read_only=True) as con:
        rows = store.list_segments(con)
    if not rows:
        click.echo("No manual segments yet. Create one with `cdp segments create NAME`.")
        return
    table = _table()
    table.add_column("name", no_wrap=True)
    table.add_column("members", justify="right")
    table.add_column("owner")
    table.add_column("updated (UTC)", no_wrap=True)
    table.add_column("description")
    for row in rows:
        table.add_row(
            row.segment_name,
            f"{row.member_count:,}",
            row.owner or "",
            f"{row.updated_at:%Y-%m-%d %H:%M}",
            row.description or "",
        )
    _print_table(table)


@segments.command()
@click.argument("name")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=None,
    help="Members shown (default: 50 in the table, all with --ids-only; 0: all).",
)
@click.option(
    "--ids-only", is_flag=True, help="Print only the current profile ids, one per line (e.g. for `add --from-file -`)."
)
@warehouse_option
@_friendly_errors
def show(name: str, limit: int | None, ids_only: bool, warehouse: str | None) -> None:
    """Show segment NAME and its members: profile id, country, first and last seen, who added them and when.

    Members appear under their current profile ids (merges followed); a member whose profile
    no longer exists is marked and drops out at the next build.
    """
    with _warehouse(warehouse, read_only=True) as con:
        segment = store.get_segment(con, name)
        members = store.segment_members(con, name)
    if ids_only:  # members as the next build counts them: erased profiles left out
        members = [member for member in members if member.in_profiles]
    if limit is None:
        limit = 0 if ids_only else 50
    shown = members if limit == 0 else members[:limit]
    if ids_only:
        for member in shown:
            click.echo(member.profile_id)
        return
    click.echo(
        f"{segment.segment_name}: {segment.description or '(no description)'} — owner {segment.owner}, "
        f"{segment.member_count:,} members, updated {segment.updated_at:%Y-%m-%d %H:%M} UTC"
    )
    if not members:
        click.echo(f"No members yet. Add some with `cdp segments add {name} PROFILE_ID…`.")
        return
    table = _table()
    table.add_column("profile_id", no_wrap=True)
    table.add_column("country", no_wrap=True)
    table.add_column("first seen", no_wrap=True)
    table.add_column("last seen", no_wrap=True)
    table.add_column("added (UTC)")
    table.add_column("by")
    table.add_column("note")
    for member in shown:
        table.add_row(
            member.profile_id,
            member.country or "",
            f"{member.first_seen_at:%Y-%m-%d}" if member.first_seen_at else "",
            f"{member.last_seen_at:%Y-%m-%d}" if member.last_seen_at else "",
            f"{member.added_at:%Y-%m-%d %H:%M}",
            member.added_by,
            member.note,
        )
    _print_table(table)
    if len(shown) < len(members):
        click.echo(f"… and {len(members) - len(shown):,} more (--limit 0 shows all).")


@segments.command()
@click.argument("name")
@click.option("--each", "each_profile", is_flag=True, help="One row per profile added or removed, not one per command.")
@click.option(
    "--limit", type=click.IntRange(min=0), default=50, show_default=True, help="Most recent rows shown (0: all)."
)
@warehouse_option
@_friendly_errors
def history(name: str, each_profile: bool, limit: int, warehouse: str | None) -> None:
    """Show the audit log of segment NAME: every change, when, by whom.

    One row per command (an add of many profiles is one row; --each lists every profile).
    Follows the segment through renames (earlier rows keep the name it had then). For a name
    that is no longer in use, shows the last segment that had it, deleted or renamed.
    """
    with _warehouse(warehouse, read_only=True) as con:
        entries, now_named = store.segment_history(con, name, each_profile=each_profile)
    if now_named is None:
        click.echo(f"Segment {name!r} was deleted; its history:")
    elif now_named != name:
        click.echo(f"Segment {name!r} is now named {now_named!r}; its history:")
    hidden = max(len(entries) - limit, 0) if limit else 0
    if hidden:
        click.echo(f"({hidden:,} earlier rows not shown: --limit 0 shows all.)")
    table = _table()
    table.add_column("at (UTC)", no_wrap=True)
    table.add_column("by")
    table.add_column("action")
    table.add_column("segment")
    table.add_column("profiles", no_wrap=True)
    table.add_column("detail")
    for entry in entries[hidden:]:
        if entry.profile_count == 0:
            profiles = ""
        elif entry.profile_id is not None:
            profiles = entry.profile_id
        else:
            profiles = f"{entry.profile_count:,} profiles"
        detail = "(varies: --each shows it)" if entry.detail_varies else entry.detail or ""
        table.add_row(
            f"{entry.changed_at:%Y-%m-%d %H:%M:%S}", entry.actor, entry.action, entry.segment_name, profiles, detail
        )
    _print_table(table)
