"""Lookups in the public profile models that manual segments need.

Profile ids follow identity merges: dbt's ``profile_merge_targets`` maps every retired id to
the id that person has now (chains already flattened at build time), so finding the current
id is one lookup. Adding a retired id stores the surviving id; a member stored under an id
that was merged later counts under the surviving id here and in ``int_segments__manual_members``
(which reads the same model).

Email addresses given to :func:`profile_ids_for_emails` are only used in the query: never
logged, never put in an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import duckdb

from cdp.manual_segments.errors import ManualSegmentError
from cdp.manual_segments.tables import relation_exists

#: country, first_seen_at, last_seen_at: the non-personal columns `cdp segments show` prints
ProfileDetails = tuple[str | None, datetime | None, datetime | None]


def resolve_profile_ids(con: duckdb.DuckDBPyConnection, profile_ids: Iterable[str]) -> dict[str, str]:
    """Each id → the id it stands for now (an id that was never merged away maps to itself)."""
    ids = distinct(profile_ids)
    resolved = {pid: pid for pid in ids}
    if not ids or not relation_exists(con, "main", "profile_merge_targets"):
        return resolved
    rows = con.execute(
        """
        select merged_profile_id, surviving_profile_id
        from main.profile_merge_targets
        where merged_profile_id in (select unnest(?::varchar[]))
        """,
        [ids],
    ).fetchall()
    resolved.update(dict(rows))
    return resolved


def profile_ids_for_emails(con: duckdb.DuckDBPyConnection, emails: Sequence[str]) -> list[str | None]:
    """The profile id of each email address (normalised: trimmed, lower-cased), None where none matches."""
    require_profiles(con, table="profile_identifiers")
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


def profile_details(con: duckdb.DuckDBPyConnection, profile_ids: set[str]) -> dict[str, ProfileDetails]:
    """The profiles among ``profile_ids`` that exist now, with a few non-personal columns."""
    if not profile_ids or not relation_exists(con, "main", "profiles"):
        return {}
    rows = con.execute(
        """
        select profile_id, country, first_seen_at, last_seen_at
        from main.profiles
        where profile_id in (select unnest(?::varchar[]))
        """,
        [sorted(profile_ids)],
    ).fetchall()
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def require_profiles(con: duckdb.DuckDBPyConnection, table: str = "profiles") -> None:
    if not relation_exists(con, "main", table):
        raise ManualSegmentError(f"The warehouse has no {table} table yet. Run `cdp build` first.")


def distinct(values: Iterable[str]) -> list[str]:
    """Stripped, non-empty values, each once, in the order given."""
    out: dict[str, None] = {}
    for value in values:
        value = value.strip()
        if value:
            out.setdefault(value, None)
    return list(out)
