"""Planning a sync, in SQL, inside the warehouse.

The SQL lives in ``destinations/sql/`` as Jinja templates (the dbt idiom): only names
that :mod:`destinations.definitions` has validated (sync name, column names, a mode) are
rendered into the text; values are bound parameters. This module owns the plan table
(``plan__<sync>``, rebuilt every run); the engine's lasting tables beside it belong to
:mod:`destinations.state`. A key is valid by the same pattern staging normalises
identifiers with (dbt var ``identifier_patterns``, read by :mod:`cdp.dbt_vars`).

Where it runs: the desired rows (desired.sql) are computed where the data lives, the
build's engine (``data``); the diff against the confirmed state (plan.sql) runs in the state
store beside the state (``store``). Usually both are the same warehouse; a Spark build's
desired rows are loaded into its DuckDB or Postgres state store first (one bulk load), and so
are the privacy-blocked people (privacy_blocked.sql), which the diff needs too.

Why not a dbt model per sync? A plan depends on the sync's own confirmed state, which
changes with every run and every destination answer; it is computed at sync time, not
build time, and must not wait for a dbt invocation (seconds) to do it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cdp.dbt_vars import key_pattern
from cdp.experiments import ARM_COLUMN, GLOBAL_HOLDOUT, ExperimentError, global_holdout_percent
from destinations import state
from destinations.base import Change
from destinations.definitions import SyncDefinition, SyncDefinitionError
from destinations.sql_templates import render
from destinations.summary import INVALID_REASONS, PlanSummary
from destinations.warehouse import MissingTableError, Warehouse, as_warehouse

__all__ = [
    "PlanSummary",
    "SyncSources",
    "build_plan",
    "check_against_warehouse",
    "plan_table",
    "PlannedWindow",
    "planned_changes",
    "planned_window",
    "segment_min_size",
]


@dataclass(frozen=True)
class SyncSources:
    """Where a sync reads from. Tests point these at small hand-made tables."""

    membership: str = "main.segment_membership"
    profile_fields: str = "main.sync_profile_fields"
    segments: str = "main.segments"
    #: the erasure build's audit trail (dbt model privacy_erasures): whom the syncs must forget
    privacy_erasures: str = "main.privacy_erasures"
    #: experiment arms and the global holdout, as dbt assigned them (schema.table)
    assignments: str = "main.experiment_assignments"


#: desired.sql's exclusions that hold a member back for an experiment (counted as excluded_holdout)
HOLDOUT_EXCLUSIONS = ("holdout", "control arm", "other arm", "no arm", "global holdout")


def plan_table(sync: SyncDefinition) -> str:
    """The sync's plan table, rebuilt by every run (kept for review after a dry run)."""
    return f'{state.STATE_SCHEMA}."plan__{sync.name}"'


def check_against_warehouse(con: Warehouse, sync: SyncDefinition, sources: SyncSources) -> None:
    """What only the warehouse knows: the segment exists, and every mapped column does."""
    data = as_warehouse(con)
    try:
        segment_rows = data.fetch(
            f"select count(*) from {sources.segments} where segment_name = :segment", {"segment": sync.segment}
        )
    except MissingTableError as error:
        raise SyncDefinitionError(
            f"sync '{sync.name}': the warehouse has no {sources.segments} table — run `cdp build` first"
        ) from error
    if segment_rows[0][0] == 0:
        raise SyncDefinitionError(
            f"sync '{sync.name}': field 'segment': unknown segment '{sync.segment}' "
            f"(not in {sources.segments}; see `cdp segments list`)"
        )
    columns = set(data.columns(sources.profile_fields))
    mapped = [("identifiers", name, column) for name, column in sync.identifiers.items()]
    mapped += [("fields", name, column) for name, column in sync.fields.items()]
    for section, name, column in mapped:
        if section == "fields" and column == ARM_COLUMN and sync.experiment:
            continue  # the member's arm, from the assignments
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


def _reads_assignments(data: Warehouse, sync: SyncDefinition, sources: SyncSources) -> bool:
    """Whether the plan reads the experiment assignments: for the sync's experiment, and for the
    global holdout wherever dbt built them. Refuses a sync that needs them before a build made them."""
    schema, _, table = sources.assignments.rpartition(".")
    if data.has_table(schema or "main", table):
        return True
    try:
        holdout = global_holdout_percent()
    except ExperimentError as error:
        raise SyncDefinitionError(str(error)) from error
    if sync.experiment or holdout:
        needs = f"experiment '{sync.experiment}'" if sync.experiment else f"the global holdout ({holdout}%)"
        raise SyncDefinitionError(
            f"sync '{sync.name}': {needs} needs {sources.assignments}, which the warehouse lacks — run `cdp build` first"
        )
    return False


def segment_min_size(con: Warehouse, sync: SyncDefinition, sources: SyncSources) -> int | None:
    """The minimum size the segment's YAML gives it (``segments.min_size``), or None where
    none is set (or the segments table has no such column, as in a hand-made warehouse)."""
    names, rows = as_warehouse(con).query(
        f"select * from {sources.segments} where segment_name = :segment limit 1", {"segment": sync.segment}
    )
    columns = [name.lower() for name in names]
    if not rows or "min_size" not in columns:
        return None
    value = rows[0][columns.index("min_size")]
    return None if value is None else int(value)


def build_plan(
    con: Warehouse,
    sync: SyncDefinition,
    sources: SyncSources,
    *,
    full_resync: bool = False,
    run_id: str = "plan",
    data: Warehouse | None = None,
) -> PlanSummary:
    """Write the plan table for ``sync`` in the state store ``con`` and return its counts.
    Changes no state. ``data`` is the warehouse holding ``sources`` (default: ``con`` itself).

    ``run_id`` seeds the ids of new changes (a re-sent unanswered change keeps its own)."""
    store = as_warehouse(con)
    data = store if data is None else as_warehouse(data)
    profile_columns = set(data.columns(sources.profile_fields))
    suppressed = state.suppressed_hashes(store)
    context = {
        "schema": state.STATE_SCHEMA,
        "sync_name": sync.name,
        "membership": sources.membership,
        "profile_fields": sources.profile_fields,
        "key_column": sync.key_column,
        "identifiers": list(sync.identifiers.items()),
        "unique_identifiers": list(sync.unique_identifiers),
        "fields": list(sync.fields.items()),
        "consent_column": sync.consent_column,
        "holdout_percent": int(sync.holdout_percent),
        "mode": sync.mode,
        "checks_key_format": key_pattern(sync.key) is not None,
        "coverage": coverage_checks(sync),
        # an empty list matches nobody: no hashing of every member's email and phone
        "suppression_columns": [(kind, kind) for kind in SUPPRESSIBLE if kind in profile_columns]
        if suppressed.num_rows
        else [],
        "assignments": sources.assignments,
        "global_holdout": _reads_assignments(data, sync, sources),
        "experiment": sync.experiment,
        "arms": list(sync.arms),
        "arm_column": ARM_COLUMN if sync.experiment else None,
    }
    params = {
        "segment": sync.segment,
        "sync_name": sync.name,
        "full_resync": full_resync,
        "run_id": run_id,
        "key_pattern": key_pattern(sync.key),
        "experiment": sync.experiment,
        "global_holdout_experiment": GLOBAL_HOLDOUT,
    }
    # the suppression list lives beside the state; desired.sql reads it where the data lives
    data.load_rows("sync_suppressed", suppressed, temporary=True)
    try:
        _computed_where_the_data_lives(data, store, "desired.sql", "sync_desired", context, params, updatable=True)
        store.execute(render("duplicate_keys.sql", dialect=store.dialect))
        if data is not store:
            _computed_where_the_data_lives(data, store, "privacy_blocked.sql", "sync_privacy_blocked", context, params)
        store.create_table_as(
            plan_table(sync),
            render("plan.sql", dialect=store.dialect, privacy_blocked_loaded=data is not store, **context),
            params,
        )
    finally:
        data.drop_loaded("sync_suppressed")
    counts = store.fetch(
        f"""
        select
            count(*),
            count(*) filter (where exclusion is null and invalid_reason is null),
            count(*) filter (where exclusion in ('no consent', 'deletion requested')),
            count(*) filter (where exclusion in ({", ".join(f"'{e}'" for e in HOLDOUT_EXCLUSIONS)})),
            count(*) filter (where invalid_reason is not null),
            count(*) filter (where exclusion = 'suppressed')
        from sync_desired
        """
    )[0]
    invalid_by_reason = dict(
        store.fetch("select invalid_reason, count(*) from sync_desired where invalid_reason is not null group by 1")
    )
    ops = dict(store.fetch(f"select op, count(*) from {plan_table(sync)} group by op"))
    (privacy_removes,) = store.fetch(f"select count(*) from {plan_table(sync)} where op = 'remove' and is_privacy")[0]
    # skipped rows that would have been adds or updates: still desired, but not unchanged
    (skipped_upserts,) = store.fetch(
        f"select count(*) from {plan_table(sync)} where op = 'skip_rejected' and payload is not null"
    )[0]
    desired, adds, updates = counts[1], ops.get("add", 0), ops.get("update", 0)
    coverage = _coverage(store, [name for name, _ in context["coverage"]])
    return PlanSummary(
        segment_members=counts[0],
        excluded_consent=counts[2],
        excluded_holdout=counts[3],
        invalid=counts[4],
        **{field: invalid_by_reason.get(reason, 0) for reason, field in INVALID_REASONS.items()},
        desired=desired,
        confirmed_before=state.held_count(store, sync.name),
        adds=adds,
        updates=updates,
        removes=ops.get("remove", 0),
        unchanged=desired - adds - updates - skipped_upserts,
        skipped_rejected=ops.get("skip_rejected", 0),
        excluded_suppressed=counts[5],
        privacy_removes=privacy_removes,
        identifier_coverage=coverage,
    )


def _computed_where_the_data_lives(
    data: Warehouse, store: Warehouse, template: str, table: str, context: dict, params: dict, *, updatable=False
) -> None:
    """The rows of ``template``, computed in ``data``, as the temp table ``table`` of ``store``:
    one statement when they are the same warehouse, else one bulk load from the data's engine
    (copied into a table when ``updatable``: a DuckDB store only registers the loaded rows)."""
    sql = render(template, dialect=data.dialect, **context)
    if data is store:
        store.create_table_as(table, sql, params, temporary=True)
    elif not updatable:
        store.load_rows(table, data.fetch_arrow(sql, params), temporary=True)
    else:
        store.load_rows(f"{table}_loaded", data.fetch_arrow(sql, params), temporary=True)
        try:
            store.create_table_as(table, f"select * from {table}_loaded", temporary=True)
        finally:
            store.drop_loaded(f"{table}_loaded")


#: sync_profile_fields columns the global suppression list is matched on (destinations/suppression.py)
SUPPRESSIBLE = ("email", "phone")

#: identifiers that match a person only together (Meta and Google match on name + ZIP)
NAME_AND_ZIP = ("first_name", "last_name", "zip")


def coverage_checks(sync: SyncDefinition) -> list[tuple[str, list[str]]]:
    """What the plan counts coverage of: each mapped identifier (its column not null — staging
    already nulled malformed emails and phones), and name + ZIP where all three are mapped."""
    checks = [(name, [column]) for name, column in sync.identifiers.items()]
    if all(name in sync.identifiers for name in NAME_AND_ZIP):
        checks.append(("name_and_zip", [sync.identifiers[name] for name in NAME_AND_ZIP]))
    return checks


def _coverage(store: Warehouse, names: list[str]) -> tuple[tuple[str, int], ...]:
    """How many desired records (not excluded, not invalid) carry each identifier."""
    if not names:
        return ()
    counted = ", ".join(f'count(*) filter (where "covers__{name}")' for name in names)
    row = store.fetch(f"select {counted} from sync_desired where exclusion is null and invalid_reason is null")[0]
    return tuple(zip(names, (int(value) for value in row), strict=True))


def planned_changes(
    con: Warehouse, sync: SyncDefinition, first_seq: int = 1, last_seq: int | None = None
) -> list[tuple[int, Change]]:
    """The plan's sendable rows ``first_seq..last_seq`` (default: to the last) as Changes
    for a connector, each with its seq. Sendable rows are numbered 1..PlanSummary.sendable."""
    window = planned_window(con, sync, first_seq, last_seq)
    return list(zip(window.seqs, window.changes(), strict=True))


@dataclass
class PlannedWindow:
    """The plan's sendable rows of a seq range, in seq order, as columns: each row's seq, its plan
    op (add | update | remove: the engine's commit needs it to know which keys the state may
    already hold), and what its Change carries.

    Columns of plain values, and Changes made only when a batch is sent (:meth:`changes`): the
    engine holds a window for seconds beside the sending, and an object per row living that long
    is one more for the garbage collector to walk, again and again, holding the GIL the sender
    needs (dicts of plain values, as the identifiers and fields are, it does not track)."""

    seqs: list[int] = field(default_factory=list)
    ops: list[str] = field(default_factory=list)
    change_ids: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    identifiers: list[dict[str, Any]] = field(default_factory=list)
    fields: list[dict[str, Any]] = field(default_factory=list)
    destination_ids: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.seqs)

    def changes(self, first: int = 0, last: int | None = None) -> list[Change]:
        """Rows ``first`` up to ``last`` (indexes, as a slice) as Changes for a connector."""
        window = slice(first, last)
        return [
            Change(change_id, "remove" if op == "remove" else "upsert", key, identifiers, fields, destination_id)
            for op, change_id, key, identifiers, fields, destination_id in zip(
                self.ops[window],
                self.change_ids[window],
                self.keys[window],
                self.identifiers[window],
                self.fields[window],
                self.destination_ids[window],
                strict=True,
            )
        ]


def planned_window(
    con: Warehouse, sync: SyncDefinition, first_seq: int = 1, last_seq: int | None = None
) -> PlannedWindow:
    """The plan's sendable rows ``first_seq..last_seq`` (default: to the last) as a PlannedWindow."""
    rows = as_warehouse(con).fetch(
        f"""
        select seq, op, change_id, record_key, payload, destination_id
        from {plan_table(sync)}
        where seq between :first_seq and :last_seq and op in ('add', 'update', 'remove')
        order by seq
        """,
        {"first_seq": first_seq, "last_seq": last_seq if last_seq is not None else 2**62},
    )
    ops = [row[1] for row in rows]
    keys = [row[3] for row in rows]
    identifiers, fields = _parsed_payloads([row[4] for row in rows if row[1] != "remove"])
    upsert_identifiers, upsert_fields = iter(identifiers), iter(fields)
    return PlannedWindow(
        seqs=[row[0] for row in rows],
        ops=ops,
        change_ids=[row[2] for row in rows],
        keys=keys,
        # a removal carries only what addresses the record
        identifiers=[
            {sync.key: key} if op == "remove" else next(upsert_identifiers) for op, key in zip(ops, keys, strict=True)
        ],
        fields=[{} if op == "remove" else next(upsert_fields) for op in ops],
        destination_ids=[row[5] for row in rows],
    )


#: payloads parsed per json.loads call: enough that the call's own cost vanishes, few enough that
#: the short-lived objects of one call die before the garbage collector promotes them
PARSE_CHUNK = 500


def _parsed_payloads(payloads: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The identifiers and the fields of each payload desired.sql built (a JSON object with both).
    Payloads are parsed a chunk at a time, joined into one JSON array: valid JSON values joined by
    commas inside brackets are a valid array of exactly those values."""
    identifiers: list[dict[str, Any]] = []
    fields: list[dict[str, Any]] = []
    for start in range(0, len(payloads), PARSE_CHUNK):
        for body in json.loads("[" + ",".join(payloads[start : start + PARSE_CHUNK]) + "]"):
            identifiers.append(body.get("identifiers") or {})
            fields.append(body.get("fields") or {})
    return identifiers, fields
