"""Reading manual segments: list, show, history, and members under their current profile ids.

Reads work on a read-only connection and create nothing: on a warehouse where the CLI never
ran, there are simply no segments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from cdp.manual_segments.errors import SegmentNotFoundError, not_found
from cdp.manual_segments.profiles import profile_details, resolve_profile_ids
from cdp.manual_segments.tables import SCHEMA, tables_exist


@dataclass(frozen=True)
class SegmentSummary:
    segment_name: str
    description: str | None
    owner: str | None
    member_count: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Member:
    """A member as it counts now: its current profile id and a few non-personal columns."""

    profile_id: str
    stored_profile_ids: tuple[str, ...]
    in_profiles: bool
    country: str | None
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    added_at: datetime
    added_by: str

    @property
    def note(self) -> str:
        notes = []
        retired = [stored for stored in self.stored_profile_ids if stored != self.profile_id]
        if retired:
            notes.append(f"added as {', '.join(retired)} (since merged)")
        if not self.in_profiles:
            notes.append("not in profiles (erased?): dropped at the next build")
        return "; ".join(notes)


@dataclass(frozen=True)
class AuditEntry:
    """One audit row, or (summarised) one action of one command over all the profiles it touched."""

    changed_at: datetime
    actor: str
    action: str
    segment_name: str
    profile_count: int
    profile_id: str | None  # the profile when exactly one
    detail: str | None  # shared by every row summarised
    detail_varies: bool  # the rows summarised have different details (see each_profile)
    change_id: str


def list_segments(con: duckdb.DuckDBPyConnection) -> list[SegmentSummary]:
    """Every manual segment with its member count as the next build will count it."""
    if not tables_exist(con):
        return []
    counts: dict[str, int] = {}
    for member_segment, members in members_by_segment(con).items():
        counts[member_segment] = sum(1 for member in members if member.in_profiles)
    rows = con.execute(
        f"select segment_name, description, owner, created_at, updated_at from {SCHEMA}.definitions order by segment_name"
    ).fetchall()
    return [
        SegmentSummary(
            segment_name=name,
            description=description,
            owner=owner,
            member_count=counts.get(name, 0),
            created_at=created_at,
            updated_at=updated_at,
        )
        for name, description, owner, created_at, updated_at in rows
    ]


def get_segment(con: duckdb.DuckDBPyConnection, name: str) -> SegmentSummary:
    for segment in list_segments(con):
        if segment.segment_name == name:
            return segment
    raise not_found(name)


def segment_members(con: duckdb.DuckDBPyConnection, name: str) -> list[Member]:
    """The members of one segment under their current profile ids, oldest first."""
    if not tables_exist(con):
        raise not_found(name)
    segment_id(con, name)
    return members_by_segment(con, name).get(name, [])


def segment_history(
    con: duckdb.DuckDBPyConnection, name: str, *, each_profile: bool = False
) -> tuple[list[AuditEntry], str | None]:
    """Audit trail of the segment named ``name`` now, or of the last segment that had that name.

    One entry per action of each command (an add of 50,000 profiles is one entry), or one per
    audit row with ``each_profile``. Returns (entries oldest first, the segment's name now:
    ``name``, its new name after a rename, or None if it was deleted).
    """
    if not tables_exist(con):
        raise not_found(name)
    current = con.execute(f"select segment_id from {SCHEMA}.definitions where segment_name = ?", [name]).fetchall()
    if current:
        history_id = current[0][0]
    else:
        past = con.execute(
            f"select segment_id from {SCHEMA}.audit_log where segment_name = ? order by changed_at desc limit 1", [name]
        ).fetchall()
        if not past:
            raise SegmentNotFoundError(f"No manual segment named {name!r}, now or in the audit log.")
        history_id = past[0][0]
    now_named = con.execute(
        f"select segment_name from {SCHEMA}.definitions where segment_id = ?", [history_id]
    ).fetchall()
    grouping = "change_id, action, profile_id, detail" if each_profile else "change_id, action"
    rows = con.execute(
        f"""
        select
            min(changed_at),
            min(actor),
            action,
            min(segment_name),
            count(profile_id),
            case when count(distinct profile_id) = 1 then min(profile_id) end,
            case when count(distinct coalesce(detail, '')) = 1 then min(detail) end,
            count(distinct coalesce(detail, '')) > 1,
            change_id
        from {SCHEMA}.audit_log
        where segment_id = ?
        group by {grouping}
        order by
            min(changed_at),
            change_id,
            case action when 'create' then 0 when 'rename' then 1 when 'delete' then 3 else 2 end,
            min(profile_id)
        """,
        [history_id],
    ).fetchall()
    return [AuditEntry(*row) for row in rows], (now_named[0][0] if now_named else None)


def segment_id(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """The internal id of the segment named ``name`` now; SegmentNotFoundError if there is none."""
    rows = con.execute(f"select segment_id from {SCHEMA}.definitions where segment_name = ?", [name]).fetchall()
    if not rows:
        raise not_found(name)
    return rows[0][0]


def stored_ids_by_current_id(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, list[str]]:
    """A segment's members: current profile id → the ids they are stored under (several after a merge)."""
    stored = [
        row[0]
        for row in con.execute(f"select profile_id from {SCHEMA}.members where segment_name = ?", [name]).fetchall()
    ]
    current = resolve_profile_ids(con, stored)
    out: dict[str, list[str]] = {}
    for stored_id in stored:
        out.setdefault(current[stored_id], []).append(stored_id)
    return out


def members_by_segment(con: duckdb.DuckDBPyConnection, name: str | None = None) -> dict[str, list[Member]]:
    """Members of every segment (or of ``name``), one per current profile id, oldest first."""
    query = f"select segment_name, profile_id, added_at, added_by from {SCHEMA}.members"
    params: list = []
    if name is not None:
        query += " where segment_name = ?"
        params.append(name)
    stored = con.execute(query + " order by added_at, profile_id", params).fetchall()
    current = resolve_profile_ids(con, (row[1] for row in stored))
    details = profile_details(con, set(current.values()))
    grouped: dict[str, dict[str, list]] = {}
    for segment_name, stored_id, added_at, added_by in stored:
        by_profile = grouped.setdefault(segment_name, {})
        profile_id = current[stored_id]
        if profile_id in by_profile:
            by_profile[profile_id][0].append(stored_id)
        else:
            by_profile[profile_id] = [[stored_id], added_at, added_by]
    out: dict[str, list[Member]] = {}
    for segment_name, by_profile in grouped.items():
        out[segment_name] = [
            Member(
                profile_id=profile_id,
                stored_profile_ids=tuple(stored_ids),
                in_profiles=profile_id in details,
                country=details.get(profile_id, (None, None, None))[0],
                first_seen_at=details.get(profile_id, (None, None, None))[1],
                last_seen_at=details.get(profile_id, (None, None, None))[2],
                added_at=added_at,
                added_by=added_by,
            )
            for profile_id, (stored_ids, added_at, added_by) in by_profile.items()
        ]
    return out
