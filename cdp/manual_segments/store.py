"""Changing manual segments: create, add, remove, rename, delete.

Every write is one transaction: a command changes everything it says or nothing, and writes
its audit rows under one ``change_id``. Renaming keeps members and audit trail
(``segment_id`` ties the rows of one segment together across names; each audit row keeps the
name it had at the time). ``segment_membership_history`` is keyed by name: at the next build
the stays under the old name close and stays under the new name open.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from cdp.manual_segments.errors import (
    ManualSegmentError,
    NotMembersError,
    SegmentExistsError,
    UnknownProfilesError,
    format_ids,
    plural,
)
from cdp.manual_segments.names import validate_segment_name
from cdp.manual_segments.profiles import distinct, profile_details, require_profiles, resolve_profile_ids
from cdp.manual_segments.reads import segment_id, stored_ids_by_current_id
from cdp.manual_segments.tables import SCHEMA, transaction


@dataclass(frozen=True)
class Resolved:
    """A profile id as given and the id it stands for now (the same unless it was merged away)."""

    given: str
    profile_id: str

    @property
    def was_merged(self) -> bool:
        return self.given != self.profile_id


@dataclass
class MembershipChange:
    """What an add or remove did."""

    segment_name: str
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    resolved: list[Resolved] = field(default_factory=list)


def create_segment(
    con: duckdb.DuckDBPyConnection,
    name: str,
    *,
    description: str | None,
    owner: str | None,
    actor: str,
) -> None:
    """Define an empty segment. Raises InvalidSegmentNameError or SegmentExistsError."""
    validate_segment_name(con, name)  # reads only; outside the transaction (a failed read would abort it)
    with transaction(con):
        _raise_if_exists(con, name)
        now = _now()
        new_id = uuid.uuid4().hex
        con.execute(
            f"insert into {SCHEMA}.definitions (segment_name, segment_id, description, owner, created_at, updated_at) "
            "values (?, ?, ?, ?, ?, ?)",
            [name, new_id, description, owner or actor, now, now],
        )
        _audit(con, actor, now, [("create", new_id, name, None, _describe(description, owner or actor))])


def add_members(
    con: duckdb.DuckDBPyConnection,
    name: str,
    profile_ids: Iterable[str],
    *,
    actor: str,
    detail: str | None = None,
) -> MembershipChange:
    """Add profiles to a segment, all or nothing.

    Ids merged away are replaced by their surviving id (``resolved`` lists them). Unknown ids
    raise UnknownProfilesError and add nothing. Profiles already members are left alone
    (``unchanged``); adding only those is not an error.
    """
    given = distinct(profile_ids)
    if not given:
        raise ManualSegmentError("No profile ids given: pass them as arguments or with --from-file.")
    with transaction(con):
        internal_id = segment_id(con, name)
        require_profiles(con)
        current = resolve_profile_ids(con, given)
        existing = set(profile_details(con, set(current.values())))
        unknown = [pid for pid in given if current[pid] not in existing]
        if unknown:
            raise UnknownProfilesError(
                f"{plural(len(unknown), 'profile id')} {'is' if len(unknown) == 1 else 'are'} not in profiles: "
                f"{format_ids(unknown)}. Nothing was added to {name!r}. "
                "(`cdp build` refreshes profiles; ids are case-sensitive.)",
                unknown,
            )
        change = MembershipChange(segment_name=name)
        members = set(stored_ids_by_current_id(con, name))
        rows = []
        seen: set[str] = set()
        for pid in given:
            profile_id = current[pid]
            if profile_id != pid:
                change.resolved.append(Resolved(given=pid, profile_id=profile_id))
            if profile_id in seen:  # two of the given ids are one person now
                continue
            seen.add(profile_id)
            if profile_id in members:
                change.unchanged.append(profile_id)
                continue
            change.changed.append(profile_id)
            note = f"given as {pid}, merged into {profile_id}" if profile_id != pid else None
            rows.append((profile_id, "; ".join(filter(None, [detail, note])) or None))
        if rows:
            now = _now()
            con.execute(
                f"insert into {SCHEMA}.members (segment_name, profile_id, added_at, added_by) "
                "select ?, unnest(?::varchar[]), ?, ?",
                [name, [profile_id for profile_id, _ in rows], now, actor],
            )
            _touch(con, name, now)
            _audit(con, actor, now, [("add", internal_id, name, profile_id, note) for profile_id, note in rows])
    return change


def remove_members(
    con: duckdb.DuckDBPyConnection,
    name: str,
    profile_ids: Iterable[str],
    *,
    actor: str,
) -> MembershipChange:
    """Remove profiles from a segment, all or nothing: any id that is not a member raises NotMembersError.

    An id is a member if it, or the id it was merged into, is a member now.
    """
    given = distinct(profile_ids)
    if not given:
        raise ManualSegmentError("No profile ids given: pass them as arguments or with --from-file.")
    with transaction(con):
        internal_id = segment_id(con, name)
        current = resolve_profile_ids(con, given)
        stored_by_current = stored_ids_by_current_id(con, name)
        missing = [pid for pid in given if current[pid] not in stored_by_current]
        if missing:
            raise NotMembersError(
                f"{plural(len(missing), 'profile id')} "
                f"{'is not a member' if len(missing) == 1 else 'are not members'} of "
                f"{name!r}: {format_ids(missing)}. Nothing was removed.",
                missing,
            )
        change = MembershipChange(segment_name=name)
        audit_rows = []
        stored_to_delete: list[str] = []
        seen: set[str] = set()
        for pid in given:
            profile_id = current[pid]
            if profile_id != pid:
                change.resolved.append(Resolved(given=pid, profile_id=profile_id))
            if profile_id in seen:
                continue
            seen.add(profile_id)
            change.changed.append(profile_id)
            stored = stored_by_current[profile_id]
            stored_to_delete.extend(stored)
            retired = [s for s in stored if s != profile_id]
            note = f"stored as {', '.join(retired)}" if retired else None
            audit_rows.append(("remove", internal_id, name, profile_id, note))
        con.execute(
            f"delete from {SCHEMA}.members where segment_name = ? and profile_id in (select unnest(?::varchar[]))",
            [name, stored_to_delete],
        )
        now = _now()
        _touch(con, name, now)
        _audit(con, actor, now, audit_rows)
    return change


def rename_segment(con: duckdb.DuckDBPyConnection, old_name: str, new_name: str, *, actor: str) -> int:
    """Rename a segment; its members and audit trail move with it. Returns the member rows moved."""
    validate_segment_name(con, new_name)  # reads only; outside the transaction (a failed read would abort it)
    with transaction(con):
        internal_id = segment_id(con, old_name)
        if new_name == old_name:
            raise SegmentExistsError(f"The segment is already named {old_name!r}; nothing to rename.")
        _raise_if_exists(con, new_name)
        now = _now()
        con.execute(
            f"update {SCHEMA}.definitions set segment_name = ?, updated_at = ? where segment_name = ?",
            [new_name, now, old_name],
        )
        (moved,) = con.execute(f"select count(*) from {SCHEMA}.members where segment_name = ?", [old_name]).fetchall()[
            0
        ]
        con.execute(f"update {SCHEMA}.members set segment_name = ? where segment_name = ?", [new_name, old_name])
        _audit(con, actor, now, [("rename", internal_id, new_name, None, f"renamed from {old_name} to {new_name}")])
    return int(moved)


def delete_segment(con: duckdb.DuckDBPyConnection, name: str, *, actor: str) -> int:
    """Delete a segment and its members (each removal is audited). Returns the member rows removed."""
    with transaction(con):
        internal_id = segment_id(con, name)
        stored = [
            row[0]
            for row in con.execute(
                f"select profile_id from {SCHEMA}.members where segment_name = ? order by profile_id", [name]
            ).fetchall()
        ]
        now = _now()
        con.execute(f"delete from {SCHEMA}.members where segment_name = ?", [name])
        con.execute(f"delete from {SCHEMA}.definitions where segment_name = ?", [name])
        _audit(
            con,
            actor,
            now,
            [("remove", internal_id, name, pid, "segment deleted") for pid in stored]
            + [("delete", internal_id, name, None, f"deleted with {plural(len(stored), 'member')}")],
        )
    return len(stored)


def _raise_if_exists(con: duckdb.DuckDBPyConnection, name: str) -> None:
    rows = con.execute(f"select owner, created_at from {SCHEMA}.definitions where segment_name = ?", [name]).fetchall()
    if rows:
        owner, created_at = rows[0]
        raise SegmentExistsError(
            f"A manual segment named {name!r} already exists (owner {owner}, created {created_at:%Y-%m-%d %H:%M} UTC). "
            "Choose another name, or add to it with `cdp segments add`."
        )


def _touch(con: duckdb.DuckDBPyConnection, name: str, now: datetime) -> None:
    con.execute(f"update {SCHEMA}.definitions set updated_at = ? where segment_name = ?", [now, name])


def _audit(
    con: duckdb.DuckDBPyConnection,
    actor: str,
    at: datetime,
    rows: Sequence[tuple[str, str, str, str | None, str | None]],
) -> None:
    """Append (action, segment_id, segment_name, profile_id, detail) rows under one change id."""
    if not rows:
        return
    columns = [list(column) for column in zip(*rows, strict=False)]
    con.execute(
        f"""
        insert into {SCHEMA}.audit_log (change_id, changed_at, actor, action, segment_id, segment_name, profile_id, detail)
        select ?, ?, ?, unnest(?::varchar[]), unnest(?::varchar[]), unnest(?::varchar[]), unnest(?::varchar[]), unnest(?::varchar[])
        """,
        [uuid.uuid4().hex, at, actor, *columns],
    )


def _describe(description: str | None, owner: str) -> str:
    return f"owner {owner}" + (f"; description: {description}" if description else "")


def _now() -> datetime:
    """Wall-clock time in UTC (audit timestamps record when a person acted, not the data's as_of)."""
    return datetime.now(UTC).replace(tzinfo=None)
