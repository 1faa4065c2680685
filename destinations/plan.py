"""Planning a sync, in SQL, inside the warehouse.

The SQL lives in ``destinations/sql/`` as Jinja templates (the dbt idiom): only names
that :mod:`destinations.definitions` has validated (sync name, column names, a mode) are
rendered into the text; values are bound parameters. This module owns the plan table
(``plan__<sync>``, rebuilt every run); the engine's lasting tables beside it belong to
:mod:`destinations.state`. A key is valid by the same pattern staging normalises
identifiers with (dbt var ``identifier_patterns``, read by :mod:`cdp.dbt_vars`).

Why not a dbt model per sync? A plan depends on the sync's own confirmed state, which
changes with every run and every destination answer; it is computed at sync time, not
build time, and must not wait for a dbt invocation (seconds) to do it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import duckdb

from cdp.dbt_vars import key_pattern
from destinations import state
from destinations.base import Change
from destinations.definitions import SyncDefinition, SyncDefinitionError
from destinations.sql_templates import execute_bound, render
from destinations.summary import INVALID_REASONS, PlanSummary

__all__ = [
    "PlanSummary",
    "SyncSources",
    "build_plan",
    "check_against_warehouse",
    "plan_table",
    "planned_changes",
    "segment_min_size",
]


@dataclass(frozen=True)
class SyncSources:
    """Where a sync reads from. Tests point these at small hand-made tables."""

    membership: str = "main.segment_membership"
    profile_fields: str = "main.sync_profile_fields"
    segments: str = "main.segments"


def plan_table(sync: SyncDefinition) -> str:
    """The sync's plan table, rebuilt by every run (kept for review after a dry run)."""
    return f'{state.STATE_SCHEMA}."plan__{sync.name}"'


def check_against_warehouse(con: duckdb.DuckDBPyConnection, sync: SyncDefinition, sources: SyncSources) -> None:
    """What only the warehouse knows: the segment exists, and every mapped column does."""
    try:
        segment_rows = con.execute(
            f"select count(*) from {sources.segments} where segment_name = ?", [sync.segment]
        ).fetchall()
    except duckdb.CatalogException as error:
        raise SyncDefinitionError(
            f"sync '{sync.name}': the warehouse has no {sources.segments} table — run `cdp build` first"
        ) from error
    if segment_rows[0][0] == 0:
        raise SyncDefinitionError(
            f"sync '{sync.name}': field 'segment': unknown segment '{sync.segment}' "
            f"(not in {sources.segments}; see `cdp segments list`)"
        )
    columns = {row[0].lower() for row in con.execute(f"select * from {sources.profile_fields} limit 0").description}
    mapped = [("identifiers", name, column) for name, column in sync.identifiers.items()]
    mapped += [("fields", name, column) for name, column in sync.fields.items()]
    for section, name, column in mapped:
        if column.lower() not in columns:
            raise SyncDefinitionError(
                f"sync '{sync.name}': field '{section}.{name}': column '{column}' is not in {sources.profile_fields}"
            )
    required = ["is_deletion_requested"] + ([sync.consent_column] if sync.consent_column else [])
    for column in required:
        if column not in columns:
            raise SyncDefinitionError(
                f"sync '{sync.name}': {sources.profile_fields} lacks '{column}', which consent filtering needs"
            )


def segment_min_size(con: duckdb.DuckDBPyConnection, sync: SyncDefinition, sources: SyncSources) -> int | None:
    """The minimum size the segment's YAML gives it (``segments.min_size``), or None where
    none is set (or the segments table has no such column, as in a hand-made warehouse)."""
    cursor = con.execute(f"select * from {sources.segments} where segment_name = ? limit 1", [sync.segment])
    columns = [column[0].lower() for column in cursor.description]
    rows = cursor.fetchall()
    if not rows or "min_size" not in columns:
        return None
    value = rows[0][columns.index("min_size")]
    return None if value is None else int(value)


def build_plan(
    con: duckdb.DuckDBPyConnection,
    sync: SyncDefinition,
    sources: SyncSources,
    *,
    full_resync: bool = False,
    run_id: str = "plan",
) -> PlanSummary:
    """Write the plan table for ``sync`` and return its counts. Changes no state.

    ``run_id`` seeds the ids of new changes (a re-sent unanswered change keeps its own)."""
    context = {
        "schema": state.STATE_SCHEMA,
        "sync_name": sync.name,
        "membership": sources.membership,
        "profile_fields": sources.profile_fields,
        "key_column": sync.key_column,
        "identifiers": list(sync.identifiers.items()),
        "fields": list(sync.fields.items()),
        "consent_column": sync.consent_column,
        "holdout_percent": int(sync.holdout_percent),
        "mode": sync.mode,
        "checks_key_format": key_pattern(sync.key) is not None,
        "coverage": coverage_checks(sync),
    }
    params = {
        "segment": sync.segment,
        "sync_name": sync.name,
        "full_resync": full_resync,
        "run_id": run_id,
        "key_pattern": key_pattern(sync.key),
    }
    execute_bound(con, render("desired.sql", **context), params)
    execute_bound(con, render("plan.sql", **context), params)
    counts = con.execute(
        """
        select
            count(*),
            count(*) filter (where exclusion is null and invalid_reason is null),
            count(*) filter (where exclusion in ('no consent', 'deletion requested')),
            count(*) filter (where exclusion = 'holdout'),
            count(*) filter (where invalid_reason is not null)
        from sync_desired
        """
    ).fetchall()[0]
    invalid_by_reason = dict(
        con.execute(
            "select invalid_reason, count(*) from sync_desired where invalid_reason is not null group by 1"
        ).fetchall()
    )
    ops = dict(con.execute(f"select op, count(*) from {plan_table(sync)} group by op").fetchall())
    # skipped rows that would have been adds or updates: still desired, but not unchanged
    (skipped_upserts,) = con.execute(
        f"select count(*) from {plan_table(sync)} where op = 'skip_rejected' and payload is not null"
    ).fetchall()[0]
    desired, adds, updates = counts[1], ops.get("add", 0), ops.get("update", 0)
    coverage = _coverage(con, [name for name, _ in context["coverage"]])
    return PlanSummary(
        segment_members=counts[0],
        excluded_consent=counts[2],
        excluded_holdout=counts[3],
        invalid=counts[4],
        **{field: invalid_by_reason.get(reason, 0) for reason, field in INVALID_REASONS.items()},
        desired=desired,
        confirmed_before=state.held_count(con, sync.name),
        adds=adds,
        updates=updates,
        removes=ops.get("remove", 0),
        unchanged=desired - adds - updates - skipped_upserts,
        skipped_rejected=ops.get("skip_rejected", 0),
        identifier_coverage=coverage,
    )


#: identifiers that match a person only together (Meta and Google match on name + ZIP)
NAME_AND_ZIP = ("first_name", "last_name", "zip")


def coverage_checks(sync: SyncDefinition) -> list[tuple[str, list[str]]]:
    """What the plan counts coverage of: each mapped identifier (its column not null — staging
    already nulled malformed emails and phones), and name + ZIP where all three are mapped."""
    checks = [(name, [column]) for name, column in sync.identifiers.items()]
    if all(name in sync.identifiers for name in NAME_AND_ZIP):
        checks.append(("name_and_zip", [sync.identifiers[name] for name in NAME_AND_ZIP]))
    return checks


def _coverage(con: duckdb.DuckDBPyConnection, names: list[str]) -> tuple[tuple[str, int], ...]:
    """How many desired records (not excluded, not invalid) carry each identifier."""
    if not names:
        return ()
    counted = ", ".join(f'count(*) filter (where "covers__{name}")' for name in names)
    row = con.execute(
        f"select {counted} from sync_desired where exclusion is null and invalid_reason is null"
    ).fetchall()[0]
    return tuple(zip(names, (int(value) for value in row), strict=True))


def planned_changes(
    con: duckdb.DuckDBPyConnection, sync: SyncDefinition, first_seq: int = 1, last_seq: int | None = None
) -> list[tuple[int, Change]]:
    """The plan's sendable rows ``first_seq..last_seq`` (default: to the last) as Changes
    for a connector, each with its seq. Sendable rows are numbered 1..PlanSummary.sendable."""
    rows = con.execute(
        f"""
        select seq, change_id, op, record_key, payload, destination_id
        from {plan_table(sync)}
        where seq between ? and ? and op in ('add', 'update', 'remove')
        order by seq
        """,
        [first_seq, last_seq if last_seq is not None else 2**62],
    ).fetchall()
    return [(row[0], _change(sync, *row[1:])) for row in rows]


def _change(
    sync: SyncDefinition, change_id: str, op: str, record_key: str, payload: str | None, destination_id: str | None
) -> Change:
    """One plan row as a Change; the payload is the JSON desired.sql builds."""
    if op == "remove":
        # a removal carries only what addresses the record
        return Change(
            change_id=change_id,
            op="remove",
            key=record_key,
            identifiers={sync.key: record_key},
            destination_id=destination_id,
        )
    body = json.loads(payload)
    return Change(
        change_id=change_id,
        op="upsert",
        key=record_key,
        identifiers=body.get("identifiers") or {},
        fields=body.get("fields") or {},
        destination_id=destination_id,
    )
