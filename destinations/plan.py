"""Planning a sync, in SQL, inside the warehouse.

The SQL lives in ``destinations/sql/`` as Jinja templates (the dbt idiom): only names
that :mod:`destinations.definitions` has validated (sync name, column names, a mode) are
rendered into the text; values are bound parameters. A key is valid by the same pattern
staging normalises identifiers with (dbt var ``identifier_patterns``, read by
:mod:`cdp.dbt_vars`).

Why not a dbt model per sync? A plan depends on the sync's own confirmed state, which
changes with every run and every destination answer; it is computed at sync time, not
build time, and must not wait for a dbt invocation (seconds) to do it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import jinja2

from cdp.dbt_vars import key_pattern
from destinations.definitions import SyncDefinition, SyncDefinitionError

SQL_DIR = Path(__file__).parent / "sql"
#: the engine's schema (state, runs, changes, failures, in_flight, plan__<sync>), as sql/state.sql creates it
STATE_SCHEMA = "cdp_sync"


_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(SQL_DIR), undefined=jinja2.StrictUndefined, autoescape=False
)


@dataclass(frozen=True)
class SyncSources:
    """Where a sync reads from. Tests point these at small hand-made tables."""

    membership: str = "main.segment_membership"
    profile_fields: str = "main.sync_profile_fields"
    segments: str = "main.segments"


@dataclass(frozen=True)
class PlanSummary:
    segment_members: int
    desired: int
    excluded_consent: int
    excluded_holdout: int
    invalid: int
    adds: int
    updates: int
    removes: int
    skipped_rejected: int
    confirmed_before: int

    @property
    def sendable(self) -> int:
        return self.adds + self.updates + self.removes

    @property
    def unchanged(self) -> int:
        return self.desired - self.adds - self.updates - self.skipped_upserts

    #: skipped rows that would have been adds or updates (they are still desired)
    skipped_upserts: int = 0


def execute_bound(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> duckdb.DuckDBPyConnection:
    """Execute with named parameters, binding only those the statement uses (DuckDB
    refuses extras, and a template may leave some out)."""
    used = set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", sql))
    return con.execute(sql, {name: value for name, value in params.items() if name in used})


def plan_table(sync: SyncDefinition) -> str:
    return f'{STATE_SCHEMA}."plan__{sync.name}"'


def ensure_state_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute((SQL_DIR / "state.sql").read_text())


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
                f"sync '{sync.name}': field '{section}.{name}': column '{column}' "
                f"is not in {sources.profile_fields}"
            )
    required = ["is_deletion_requested"] + ([sync.consent_column] if sync.consent_column else [])
    for column in required:
        if column not in columns:
            raise SyncDefinitionError(
                f"sync '{sync.name}': {sources.profile_fields} lacks '{column}', which consent filtering needs"
            )


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
    }
    params = {
        "segment": sync.segment,
        "sync_name": sync.name,
        "full_resync": full_resync,
        "run_id": run_id,
        "key_pattern": key_pattern(sync.key),
    }
    execute_bound(con, _templates.get_template("desired.sql").render(context), params)
    execute_bound(con, _templates.get_template("plan.sql").render(context), params)
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
    ops = dict(con.execute(f"select op, count(*) from {plan_table(sync)} group by op").fetchall())
    (skipped_upserts,) = con.execute(
        f"""
        select count(*) from {plan_table(sync)} p
        where p.op = 'skip_rejected' and p.payload is not null
        """
    ).fetchall()[0]
    (confirmed_before,) = con.execute(
        "select count(*) from cdp_sync.state where sync_name = ?", [sync.name]
    ).fetchall()[0]
    return PlanSummary(
        segment_members=counts[0],
        desired=counts[1],
        excluded_consent=counts[2],
        excluded_holdout=counts[3],
        invalid=counts[4],
        adds=ops.get("add", 0),
        updates=ops.get("update", 0),
        removes=ops.get("remove", 0),
        skipped_rejected=ops.get("skip_rejected", 0),
        confirmed_before=confirmed_before,
        skipped_upserts=skipped_upserts,
    )
