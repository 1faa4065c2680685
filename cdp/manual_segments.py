"""Manual segments: named lists of profiles that a person curates (`cdp segments …`).

The lists live in the warehouse, in schema ``manual_segments``:

``definitions``  one row per segment (name, description, owner, created/updated at)
``members``      one row per (segment, profile id) as added
``audit_log``    append-only: who changed what, when (one ``change_id`` per command)

Their columns and types are declared once, in the dbt source file
``dbt_project/models/segments/manual/_manual_segments__sources.yml``: this module creates
the tables from it (idempotent), and the dbt models read an empty relation of that shape
when the tables do not exist yet (macro ``manual_segments_relation``).

Every write is one transaction: a command changes everything it says or nothing. DuckDB
has one writer at a time; a locked file raises :class:`WarehouseBusyError`.

Profile ids follow identity merges (``main.profile_merges``: merged → surviving id, which
can chain). Adding a retired id stores the surviving id; a member stored under an id that
was merged later counts under the surviving id here and in ``int_segments__manual_members``.

Renaming a segment keeps its members and its audit trail (``segment_id`` ties the rows of
one segment together across names; each audit row keeps the name it had at the time).
``segment_membership_history`` is keyed by name: at the next build the stays under the old
name close and stays under the new name open.

Nothing here prints or raises with personal data: profiles are named by profile id only,
email addresses given to :func:`profile_ids_for_emails` never appear in messages.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import yaml

from cdp import warehouse
from cdp.settings import DBT_PROJECT_DIR

SCHEMA = "manual_segments"
SOURCES_FILE = DBT_PROJECT_DIR / "models" / "segments" / "manual" / "_manual_segments__sources.yml"
#: dbt segment models live here; a manual segment may not take one of their names.
SEGMENT_MODELS_DIR = DBT_PROJECT_DIR / "models" / "segments"
#: Lower snake case: a letter, then letters, digits and single underscores.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
NAME_MAX_LENGTH = 63
#: A chain of merges longer than this is treated as ending there (guards against a cycle).
MAX_MERGE_HOPS = 64
#: How many ids an error message lists before saying "and N more".
IDS_SHOWN_IN_ERRORS = 20


# --------------------------------------------------------------------------- errors


class ManualSegmentError(Exception):
    """A command could not be carried out; the message says why and what to do (no personal data)."""


class WarehouseBusyError(ManualSegmentError):
    """Another process holds the DuckDB file lock."""


class SegmentNotFoundError(ManualSegmentError):
    pass


class SegmentExistsError(ManualSegmentError):
    pass


class InvalidSegmentNameError(ManualSegmentError):
    pass


class UnknownProfilesError(ManualSegmentError):
    def __init__(self, message: str, profile_ids: Sequence[str]):
        super().__init__(message)
        self.profile_ids = list(profile_ids)


class NotMembersError(ManualSegmentError):
    def __init__(self, message: str, profile_ids: Sequence[str]):
        super().__init__(message)
        self.profile_ids = list(profile_ids)


# --------------------------------------------------------------------------- records


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


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[tuple[str, str], ...]
    primary_key: tuple[str, ...]

    def create_sql(self) -> str:
        lines = [f"    {_quote(name)} {data_type}" for name, data_type in self.columns]
        if self.primary_key:
            lines.append(f"    primary key ({', '.join(_quote(c) for c in self.primary_key)})")
        return f"create table if not exists {_quote(SCHEMA)}.{_quote(self.name)} (\n" + ",\n".join(lines) + "\n)"


def table_specs(sources_file: Path = SOURCES_FILE) -> list[TableSpec]:
    """The manual-segment tables as declared in the dbt source file (the one definition)."""
    document = yaml.safe_load(sources_file.read_text())
    for source in document.get("sources", []):
        if source.get("name") != SCHEMA:
            continue
        specs = []
        for table in source["tables"]:
            meta = (table.get("config") or {}).get("meta") or table.get("meta") or {}
            specs.append(
                TableSpec(
                    name=table["name"],
                    columns=tuple((column["name"], column["data_type"]) for column in table["columns"]),
                    primary_key=tuple(meta.get("primary_key", ())),
                )
            )
        return specs
    raise ManualSegmentError(f"{sources_file} declares no source named {SCHEMA!r}.")


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the schema and tables if missing and add columns declared since (idempotent)."""
    con.execute(f"create schema if not exists {_quote(SCHEMA)}")
    for spec in table_specs():
        con.execute(spec.create_sql())
        for name, data_type in spec.columns:
            if name not in spec.primary_key:
                con.execute(
                    f"alter table {_quote(SCHEMA)}.{_quote(spec.name)} add column if not exists {_quote(name)} {data_type}"
                )


def tables_exist(con: duckdb.DuckDBPyConnection) -> bool:
    return _relation_exists(con, SCHEMA, "definitions")


# --------------------------------------------------------------------------- connections


@contextmanager
def open_warehouse(path: Path, *, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse; a write connection gets the tables. Lock conflicts become WarehouseBusyError."""
    if not path.exists():
        raise ManualSegmentError(f"No warehouse at {path}. Run `cdp generate` and `cdp build` first.")
    try:
        con = warehouse.connect(path, read_only=read_only)
    except warehouse.WarehouseBusyError as error:
        raise WarehouseBusyError(str(error)) from None
    try:
        if not read_only:
            with transaction(con):
                ensure_tables(con)
        yield con
    finally:
        con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All or nothing: commit when the block finishes, roll back if it raises."""
    con.begin()
    try:
        yield
    except BaseException:
        con.rollback()
        raise
    con.commit()


# --------------------------------------------------------------------------- names


def validate_segment_name(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Raise InvalidSegmentNameError unless ``name`` is lower snake case and no dbt segment's name."""
    if len(name) > NAME_MAX_LENGTH or not NAME_PATTERN.fullmatch(name):
        raise InvalidSegmentNameError(
            f"Invalid segment name {name!r}: use lower snake case — a lower-case letter, then lower-case "
            f"letters, digits and single underscores, at most {NAME_MAX_LENGTH} characters (e.g. vip_customers). "
            "Segment names become keys in syncs."
        )
    taken_by = dbt_segment_names(con).get(name)
    if taken_by:
        raise InvalidSegmentNameError(
            f"{name!r} is already the name of a dbt segment ({taken_by}); segment names are unique across "
            "all segments. Choose another name."
        )


def dbt_segment_names(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Names used by dbt segments → where: model files under models/segments and built `segments` rows."""
    names: dict[str, str] = {}
    if SEGMENT_MODELS_DIR.exists():
        for model in sorted(SEGMENT_MODELS_DIR.rglob("*.sql")):
            relative = model.relative_to(SEGMENT_MODELS_DIR)
            if relative.parts[0] != "manual":
                names.setdefault(model.stem, f"dbt model models/segments/{relative.as_posix()}")
    if _relation_exists(con, "main", "segments"):
        try:
            rows = con.execute(
                "select segment_name, segment_type from main.segments where segment_type <> 'manual'"
            ).fetchall()
        except duckdb.Error:  # a view over tables not built yet: nothing to collide with
            rows = []
        for segment_name, segment_type in rows:
            names.setdefault(segment_name, f"{segment_type} segment in the segments table")
    return names


# --------------------------------------------------------------------------- writes


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
        segment_id = uuid.uuid4().hex
        con.execute(
            f"insert into {SCHEMA}.definitions (segment_name, segment_id, description, owner, created_at, updated_at) "
            "values (?, ?, ?, ?, ?, ?)",
            [name, segment_id, description, owner or actor, now, now],
        )
        _audit(con, actor, now, [("create", segment_id, name, None, _describe(description, owner or actor))])


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
    given = _distinct(profile_ids)
    if not given:
        raise ManualSegmentError("No profile ids given: pass them as arguments or with --from-file.")
    with transaction(con):
        segment_id = _segment_id(con, name)
        _require_profiles(con)
        current = resolve_profile_ids(con, given)
        existing = _existing_profile_ids(con, set(current.values()))
        unknown = [pid for pid in given if current[pid] not in existing]
        if unknown:
            raise UnknownProfilesError(
                f"{plural(len(unknown), 'profile id')} {'is' if len(unknown) == 1 else 'are'} not in profiles: {format_ids(unknown)}. "
                f"Nothing was added to {name!r}. (`cdp build` refreshes profiles; ids are case-sensitive.)",
                unknown,
            )
        change = MembershipChange(segment_name=name)
        members = _current_member_ids(con, name)
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
            _audit(con, actor, now, [("add", segment_id, name, profile_id, note) for profile_id, note in rows])
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
    given = _distinct(profile_ids)
    if not given:
        raise ManualSegmentError("No profile ids given: pass them as arguments or with --from-file.")
    with transaction(con):
        segment_id = _segment_id(con, name)
        current = resolve_profile_ids(con, given)
        stored_by_current = _stored_ids_by_current_id(con, name)
        missing = [pid for pid in given if current[pid] not in stored_by_current]
        if missing:
            raise NotMembersError(
                f"{plural(len(missing), 'profile id')} {'is not a member' if len(missing) == 1 else 'are not members'} of "
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
            audit_rows.append(("remove", segment_id, name, profile_id, note))
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
        segment_id = _segment_id(con, old_name)
        if new_name == old_name:
            raise SegmentExistsError(f"The segment is already named {old_name!r}; nothing to rename.")
        _raise_if_exists(con, new_name)
        now = _now()
        con.execute(
            f"update {SCHEMA}.definitions set segment_name = ?, updated_at = ? where segment_name = ?",
            [new_name, now, old_name],
        )
        (moved,) = con.execute(
            f"select count(*) from {SCHEMA}.members where segment_name = ?", [old_name]
        ).fetchall()[0]
        con.execute(f"update {SCHEMA}.members set segment_name = ? where segment_name = ?", [new_name, old_name])
        _audit(con, actor, now, [("rename", segment_id, new_name, None, f"renamed from {old_name} to {new_name}")])
    return int(moved)


def delete_segment(con: duckdb.DuckDBPyConnection, name: str, *, actor: str) -> int:
    """Delete a segment and its members (each removal is audited). Returns the member rows removed."""
    with transaction(con):
        segment_id = _segment_id(con, name)
        stored = [row[0] for row in con.execute(
            f"select profile_id from {SCHEMA}.members where segment_name = ? order by profile_id", [name]
        ).fetchall()]
        now = _now()
        con.execute(f"delete from {SCHEMA}.members where segment_name = ?", [name])
        con.execute(f"delete from {SCHEMA}.definitions where segment_name = ?", [name])
        _audit(
            con,
            actor,
            now,
            [("remove", segment_id, name, pid, "segment deleted") for pid in stored]
            + [("delete", segment_id, name, None, f"deleted with {plural(len(stored), 'member')}")],
        )
    return len(stored)


# --------------------------------------------------------------------------- reads


def list_segments(con: duckdb.DuckDBPyConnection) -> list[SegmentSummary]:
    """Every manual segment with its member count as the next build will count it."""
    if not tables_exist(con):
        return []
    counts: dict[str, int] = {}
    for member_segment, members in _members_by_segment(con).items():
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
    raise _not_found(name)


def segment_members(con: duckdb.DuckDBPyConnection, name: str) -> list[Member]:
    """The members of one segment under their current profile ids, oldest first."""
    if not tables_exist(con):
        raise _not_found(name)
    _segment_id(con, name)
    return _members_by_segment(con, name).get(name, [])


def segment_history(
    con: duckdb.DuckDBPyConnection, name: str, *, each_profile: bool = False
) -> tuple[list[AuditEntry], str | None]:
    """Audit trail of the segment named ``name`` now, or of the last segment that had that name.

    One entry per action of each command (an add of 50,000 profiles is one entry), or one per
    audit row with ``each_profile``. Returns (entries oldest first, the segment's name now:
    ``name``, its new name after a rename, or None if it was deleted).
    """
    if not tables_exist(con):
        raise _not_found(name)
    current = con.execute(f"select segment_id from {SCHEMA}.definitions where segment_name = ?", [name]).fetchall()
    if current:
        segment_id = current[0][0]
    else:
        past = con.execute(
            f"select segment_id from {SCHEMA}.audit_log where segment_name = ? order by changed_at desc limit 1", [name]
        ).fetchall()
        if not past:
            raise SegmentNotFoundError(f"No manual segment named {name!r}, now or in the audit log.")
        segment_id = past[0][0]
    now_named = con.execute(
        f"select segment_name from {SCHEMA}.definitions where segment_id = ?", [segment_id]
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
        [segment_id],
    ).fetchall()
    return [AuditEntry(*row) for row in rows], (now_named[0][0] if now_named else None)


# --------------------------------------------------------------------------- identity


def resolve_profile_ids(con: duckdb.DuckDBPyConnection, profile_ids: Iterable[str]) -> dict[str, str]:
    """Each id → the id it stands for now, following `profile_merges` chains (unmerged ids map to themselves)."""
    ids = _distinct(profile_ids)
    resolved = {pid: pid for pid in ids}
    if not ids or not _relation_exists(con, "main", "profile_merges"):
        return resolved
    rows = con.execute(
        f"""
        with recursive chain (stored_profile_id, profile_id, hops) as (
            select merged_profile_id, surviving_profile_id, 1
            from main.profile_merges
            where merged_profile_id in (select unnest(?::varchar[]))
            union all
            select chain.stored_profile_id, merges.surviving_profile_id, chain.hops + 1
            from chain
            inner join main.profile_merges as merges
                on merges.merged_profile_id = chain.profile_id
            where chain.hops < {MAX_MERGE_HOPS}
        )
        select stored_profile_id, arg_max(profile_id, hops)
        from chain
        group by stored_profile_id
        """,
        [ids],
    ).fetchall()
    resolved.update(dict(rows))
    return resolved


def profile_ids_for_emails(con: duckdb.DuckDBPyConnection, emails: Sequence[str]) -> list[str | None]:
    """The profile id of each email address (normalised: trimmed, lower-cased), None where none matches.

    The addresses are only used in the query: never logged, never put in an error.
    """
    _require_profiles(con, table="profile_identifiers")
    normalised = [email.strip().lower() for email in emails]
    rows = con.execute(
        """
        select identifier_value, profile_id
        from main.profile_identifiers
        where identifier_type = 'email'
            and identifier_value in (select unnest(?::varchar[]))
        """,
        [sorted(set(normalised))],
    ).fetchall()
    by_email = dict(rows)
    return [by_email.get(email) for email in normalised]


# --------------------------------------------------------------------------- helpers


def _members_by_segment(con: duckdb.DuckDBPyConnection, name: str | None = None) -> dict[str, list[Member]]:
    query = f"select segment_name, profile_id, added_at, added_by from {SCHEMA}.members"
    params: list = []
    if name is not None:
        query += " where segment_name = ?"
        params.append(name)
    stored = con.execute(query + " order by added_at, profile_id", params).fetchall()
    current = resolve_profile_ids(con, (row[1] for row in stored))
    details = _profile_details(con, set(current.values()))
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


def _profile_details(con: duckdb.DuckDBPyConnection, profile_ids: set[str]) -> dict[str, tuple]:
    if not profile_ids or not _relation_exists(con, "main", "profiles"):
        return {}
    rows = con.execute(
        """
        select profile_id, country, first_seen_at, last_seen_at
        from main.profiles
        where profile_id in (select unnest(?::varchar[]))
        """,
        [sorted(profile_ids)],
    ).fetchall()
    return {row[0]: tuple(row[1:]) for row in rows}


def _existing_profile_ids(con: duckdb.DuckDBPyConnection, profile_ids: set[str]) -> set[str]:
    return set(_profile_details(con, profile_ids))


def _current_member_ids(con: duckdb.DuckDBPyConnection, name: str) -> set[str]:
    return set(_stored_ids_by_current_id(con, name))


def _stored_ids_by_current_id(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, list[str]]:
    stored = [row[0] for row in con.execute(
        f"select profile_id from {SCHEMA}.members where segment_name = ?", [name]
    ).fetchall()]
    current = resolve_profile_ids(con, stored)
    out: dict[str, list[str]] = {}
    for stored_id in stored:
        out.setdefault(current[stored_id], []).append(stored_id)
    return out


def _segment_id(con: duckdb.DuckDBPyConnection, name: str) -> str:
    rows = con.execute(f"select segment_id from {SCHEMA}.definitions where segment_name = ?", [name]).fetchall()
    if not rows:
        raise _not_found(name)
    return rows[0][0]


def _not_found(name: str) -> SegmentNotFoundError:
    return SegmentNotFoundError(
        f"No manual segment named {name!r}. `cdp segments list` shows them; `cdp segments create {name}` creates it."
    )


def _raise_if_exists(con: duckdb.DuckDBPyConnection, name: str) -> None:
    rows = con.execute(
        f"select owner, created_at from {SCHEMA}.definitions where segment_name = ?", [name]
    ).fetchall()
    if rows:
        owner, created_at = rows[0]
        raise SegmentExistsError(
            f"A manual segment named {name!r} already exists (owner {owner}, created {created_at:%Y-%m-%d %H:%M} UTC). "
            "Choose another name, or add to it with `cdp segments add`."
        )


def _require_profiles(con: duckdb.DuckDBPyConnection, table: str = "profiles") -> None:
    if not _relation_exists(con, "main", table):
        raise ManualSegmentError(f"The warehouse has no {table} table yet. Run `cdp build` first.")


def _relation_exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    rows = con.execute(
        "select 1 from information_schema.tables where table_schema = ? and table_name = ? and table_catalog = current_database()",
        [schema, name],
    ).fetchall()
    return bool(rows)


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
    columns = [list(column) for column in zip(*rows)]
    con.execute(
        f"""
        insert into {SCHEMA}.audit_log (change_id, changed_at, actor, action, segment_id, segment_name, profile_id, detail)
        select ?, ?, ?, unnest(?::varchar[]), unnest(?::varchar[]), unnest(?::varchar[]), unnest(?::varchar[]), unnest(?::varchar[])
        """,
        [uuid.uuid4().hex, at, actor, *columns],
    )


def _describe(description: str | None, owner: str) -> str:
    return f"owner {owner}" + (f"; description: {description}" if description else "")


def _distinct(values: Iterable[str]) -> list[str]:
    out: dict[str, None] = {}
    for value in values:
        value = value.strip()
        if value:
            out.setdefault(value, None)
    return list(out)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def format_ids(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:IDS_SHOWN_IN_ERRORS])
    more = len(ids) - IDS_SHOWN_IN_ERRORS
    return shown + (f" … and {more} more" if more > 0 else "")


def _now() -> datetime:
    """Wall-clock time in UTC (audit timestamps record when a person acted, not the data's as_of)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
