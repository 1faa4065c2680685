"""Reverse-ETL sync engine: plan time at scale, and end-to-end delivery to a webhook.

Every measured step runs in its own fresh child process
(``python -m benchmarks.bench_sync --<step> PATH``), so its peak RSS
(``VmHWM`` in /proc/self/status: the child image's own high-water mark — ``ru_maxrss``
would inherit the parent's RSS across fork + exec) is that step's alone, not the setup's;
``base_rss_mb`` is the child's peak just before the measured call (interpreter, DuckDB,
the open connection). Times are wall clock of the measured call inside the child.
The engine's own tables (state, in-flight, the plan table) live in the schema
``destinations.state.STATE_SCHEMA`` names; the benchmark reads it from there.

A. Plan, for each size N (desired rows):

1. in a fresh temp DuckDB file, generate with ``range()`` the three tables the engine
   reads: ``main.segments`` (one segment), ``main.sync_profile_fields`` (N + N/400
   profiles: ``profile_id`` 'p'||i, ``email`` 'person'||i||'@example.com', ``first_name``,
   ``lifetime_value``, consent true, deletion false) and ``main.segment_membership``
   (profiles 0..N-1);
2. untimed: run ``build_plan`` once (all N are adds) and insert its rows into
   the state table — exactly the state a fully confirmed previous run leaves — then drop
   that plan table and checkpoint;
3. change 1% of rows, the way a dbt rebuild would (tables re-created): 0.5% get a new
   ``lifetime_value`` (i % 200 = 7: updates), 0.25% leave the segment (i % 400 = 3:
   removes), and the N/400 extra profiles join it (adds) — N desired rows again;
4. time ``destinations.plan.build_plan(con, sync, SyncSources())`` alone (mirror mode,
   consent_purpose email_marketing, key email, holdout 0) on a freshly opened connection.
   ``detail`` splits that wall time by statement: ``desired`` (desired.sql: the segment's
   rows with payload, hash, exclusions, key checks, into a temp table), ``plan``
   (plan.sql: the diff against state, materialised as the plan table ``plan__<sync>``) and
   ``counts`` (the summary queries). The planned adds / updates / removes must equal what
   step 3 changed, and ``desired`` must be N; otherwise it is printed loudly and the row
   says ``correct = False``;
5. floor: the same diff as one plain DuckDB query on a freshly opened connection —
   desired (key, md5 of the same JSON payload) from membership joined to profile fields,
   full outer join the state table (key, payload_hash), counting the ops; no consent,
   holdout, deletion, duplicate/malformed-key, in-flight or rejection logic, and nothing
   materialised. ``ratio_vs_floor`` = plan seconds / floor seconds. Its counts are checked
   the same way;
6. incremental end to end (``ours: run_sync, 1% changed, state of N``): ``run_sync`` on
   that same warehouse (state of N confirmed records) sending the 1% to a fresh sandbox,
   set up and split exactly as in B below — a steady-state scheduled run. Checked: run
   succeeded, every change confirmed, the sandbox applied exactly adds + updates + removes
   and holds adds + updates records, the state table holds N.

B. End to end, fresh sync (empty state), once per distinct M = min(N, 200,000), plus
   M = 50,000 so peak RSS can be compared at two M: a warehouse with M members, the
   ``destinations.sandbox.webhook.WebhookSandbox`` (max_batch 500) running in the
   *benchmark's own* process, and ``destinations.engine.run_sync`` in a child process
   with ``WebhookDestination(batch_size=500)``. Client and receiver are therefore in two
   processes (two GILs); the engine child's peak RSS excludes the sandbox's in-memory
   audience. ``seconds`` is the whole ``run_sync`` call (lock, plan, send, commits,
   finish). ``detail`` splits it: ``pre`` (everything before the first send:
   lock, state tables, checks, plan), ``send`` (time inside ``destination.send``, i.e.
   HTTP + signing + JSON both ways + the sandbox's work) and ``wh`` (the rest: the
   engine's warehouse work after planning — fetching batches, ``in_flight`` rows, the
   commit transactions, one per window of ``destinations.engine.COMMIT_RECORDS`` records —
   and finishing the run), plus ``wh/batch`` in ms over the first and last 10% of batches
   (time between batches outside ``send``; windows make it lumpy), which shows whether
   commit cost grows as the state table fills. ``plan_rss_mb`` is
   the child's peak RSS when the first batch is about to be sent (i.e. after planning);
   ``peak_rss_mb`` minus it is what the send loop added. The log also prints the send phase's warehouse time
   per statement (ms per batch): the child hands ``run_sync`` a pass-through connection
   (its ``open_warehouse`` seam) that times each ``execute``/``commit``; this costs
   microseconds per statement. Checked (``correct``):
   status succeeded, M confirmed, the sandbox holds exactly the M expected keys with the
   expected fields, applied M changes, saw no duplicate delivery, and the state table
   holds M rows.

   Transport floor: a child reads those exact M changes from the run's plan table with
   ``destinations.plan.planned_changes``, as the engine does (untimed, all held in
   memory), then POSTs them with ``WebhookDestination.send`` in 500-record signed
   batches to a fresh sandbox in the benchmark's process — no warehouse. ``ratio_vs_floor`` = engine seconds / transport seconds. Its peak RSS is not
   reported (it holds every change in memory on purpose).

   The sandbox answers with TCP_NODELAY (it writes headers and body separately; with
   Nagle's algorithm on, each answer waited ~40 ms for the client's delayed ACK).

Table columns: ``rows`` (N desired rows, or M records sent), ``adds``/``updates``/
``removes`` (what the step planned or sent), ``seconds``, ``rows_per_s`` (rows / seconds;
for e2e: records delivered per second), ``peak_rss_mb``, ``plan_rss_mb`` (e2e: peak by the
first send), ``base_rss_mb``, ``floor_seconds``, ``ratio_vs_floor``, ``correct``, ``detail``.
The engine's connections run with the memory limit a sync sets
(destinations.warehouse.duckdb_engine.sync_settings: 1 GB unless
CDP_SYNC_DUCKDB_MEMORY_LIMIT says otherwise; beyond it DuckDB spills to its temp directory);
the floor runs with DuckDB's defaults (threads = cores, memory_limit = 80% of RAM).

    .venv/bin/python -m benchmarks.run sync                          # N = 1M and 10M
    .venv/bin/python -m benchmarks.run sync --sizes 100000
    .venv/bin/python -m benchmarks.bench_sync 100000 1000000

Set CDP_BENCH_KEEP=1 to keep the temp warehouses (paths are printed).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

SYNC_NAME = "bench_sync"
SEGMENT = "bench_audience"
BATCH_SIZE = 500
E2E_MAX = 200_000
E2E_SMALL = 50_000
FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara")
RESULT_MARKER = "BENCH_SYNC_RESULT "

PLAN = "ours: build_plan (desired.sql + plan.sql)"
PLAN_FLOOR = "floor: plain full outer join, count ops"
E2E_FRESH = "ours: run_sync, fresh sync -> webhook sandbox"
E2E_INCREMENTAL = "ours: run_sync, 1% changed, state of N -> webhook sandbox"
TRANSPORT_FLOOR = "floor: WebhookDestination.send only (no warehouse)"

#: the same diff as plan.sql, minimal: payload exactly as desired.sql builds it (so the
#: hashes match state), no consent / holdout / key checks, nothing materialised
FLOOR_SQL = """
with desired as (
    select
        f.email as record_key,
        md5(cast(json_object(
            'identifiers', json_object('email', f.email),
            'fields', json_object('first_name', f.first_name, 'lifetime_value', f.lifetime_value)
        ) as varchar)) as payload_hash
    from main.segment_membership m
    inner join main.sync_profile_fields f on f.profile_id = m.profile_id
    where m.segment_name = :segment
),
state as (
    select record_key, payload_hash from {schema}.state where sync_name = :sync_name
)
select
    count(*) filter (where state.record_key is null) as adds,
    count(*) filter (
        where desired.record_key is not null and state.record_key is not null
            and desired.payload_hash <> state.payload_hash
    ) as updates,
    count(*) filter (where desired.record_key is null) as removes,
    count(*) filter (where desired.record_key is not null) as desired
from desired
full outer join state on state.record_key = desired.record_key
"""


def _state_schema() -> str:
    from destinations.state import STATE_SCHEMA

    return STATE_SCHEMA


def _log(message: str) -> None:
    print(f"[sync {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _loud(message: str) -> None:
    bar = "!" * 78
    print(f"\n{bar}\n!! {message}\n{bar}\n", file=sys.stderr, flush=True)


def _peak_rss_mb() -> float:
    """This process's peak resident set so far, in MiB.

    Linux: ``VmHWM`` from /proc/self/status, the high-water mark of this process image
    alone. ``getrusage().ru_maxrss`` is not used there because Linux carries it over
    fork + exec, so a child would report at least the parent's RSS at the fork (the
    benchmark's own setup). Elsewhere: ru_maxrss (KiB on Linux-likes, bytes on macOS).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _definition():
    from destinations.config import DestinationConfig
    from destinations.definitions import parse_sync_definition

    spec = {
        "segment": SEGMENT,
        "destination": "hook",
        "mode": "mirror",
        "key": "email",
        "identifiers": {"email": "email"},
        "fields": {"first_name": "first_name", "lifetime_value": "lifetime_value"},
        "consent_purpose": "email_marketing",
    }
    destinations = {"hook": DestinationConfig("hook", "webhook", {})}
    return parse_sync_definition({"name": SYNC_NAME, "depends_on": {"nodes": []}}, spec, destinations)


# -- the warehouse ----------------------------------------------------------------


def _change_counts(n: int) -> tuple[int, int, int]:
    """(adds, updates, removes) that step 3 makes at size n."""
    removes = len(range(3, n, 400))
    updates = len(range(7, n, 200))
    return removes, updates, removes


def _write_sources(con, n: int, *, changed: bool) -> None:
    """The three source tables at size n: before (profiles 0..n-1 are members) or after
    the 1% change. The n/400 extra profiles always exist; they join when ``changed``."""
    adds, _, _ = _change_counts(n)
    names = "[" + ", ".join(f"'{name}'" for name in FIRST_NAMES) + "]"
    value = "cast((i % 100000) / 100 as decimal(18, 2))"
    if changed:
        value = f"case when i < {n} and i % 200 = 7 then {value} + 1 else {value} end"
    member = f"i < {n}" if not changed else f"not (i < {n} and i % 400 = 3)"
    con.execute(f"create or replace table main.segments as select '{SEGMENT}' as segment_name")
    con.execute(
        f"""
        create or replace table main.sync_profile_fields as
        select
            'p' || i as profile_id,
            'person' || i || '@example.com' as email,
            {names}[(i % {len(FIRST_NAMES)}) + 1] as first_name,
            {value} as lifetime_value,
            true as has_email_marketing_consent,
            false as is_deletion_requested
        from range({n + adds}) as t(i)
        """
    )
    con.execute(
        f"""
        create or replace table main.segment_membership as
        select '{SEGMENT}' as segment_name, 'p' || i as profile_id
        from range({n + adds}) as t(i)
        where {member}
        """
    )


def _seed_confirmed_state(con, sync) -> int:
    """Untimed: plan once on the unchanged data and keep every row as confirmed state,
    exactly what a fully confirmed previous run leaves. Returns the state's size."""
    from destinations import state
    from destinations.plan import SyncSources, build_plan, plan_table

    state.ensure_tables(con)
    summary = build_plan(con, sync, SyncSources())
    con.execute(
        f"""
        insert into {_state_schema()}.state (
            sync_name, record_key, profile_id, payload_hash, first_confirmed_at, last_confirmed_at, last_run_id
        )
        select ?, record_key, profile_id, payload_hash, now()::timestamp, now()::timestamp, 'bench-seed'
        from {plan_table(sync)}
        where op = 'add'
        """,
        [sync.name],
    )
    con.execute(f"drop table {plan_table(sync)}")
    con.execute("checkpoint")
    return summary.adds


# -- child processes (one measured step each) ----------------------------------------


def _child(step: str, path: Path, env: dict[str, str] | None = None) -> dict:
    """Run ``python -m benchmarks.bench_sync --<step> PATH``; its result dict."""
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_sync", f"--{step}", str(path)],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(
            f"child step --{step} {path} exited {completed.returncode}; stdout tail:\n{completed.stdout[-2000:]}"
        )
    return json.loads(lines[-1][len(RESULT_MARKER) :])


class _TimedConnection:
    """Delegates to a DuckDB connection, timing each ``execute`` (everything else, such as
    ``register``, passes through untimed). DuckDB runs the statement inside ``execute``;
    fetching is separate and tiny."""

    def __init__(self, con) -> None:
        self._con = con
        self.steps: dict[str, float] = {}

    def execute(self, sql: str, *args):
        start = time.perf_counter()
        result = self._con.execute(sql, *args)
        if "create or replace temp table sync_desired" in sql:
            label = "desired"
        elif re.search(r'create or replace table \S+\."plan__', sql):
            label = "plan"
        else:
            label = "counts"
        self.steps[label] = self.steps.get(label, 0.0) + time.perf_counter() - start
        return result

    def __getattr__(self, name: str):
        return getattr(self._con, name)


def _child_plan(path: Path) -> dict:
    from cdp.warehouse import connect
    from destinations.plan import SyncSources, build_plan
    from destinations.warehouse.locations import DuckDBFile

    sync = _definition()
    timed_connections: list[_TimedConnection] = []

    def timed_connect(warehouse: Path):
        timed_connections.append(_TimedConnection(connect(warehouse)))
        return timed_connections[-1]

    # opened as a sync opens it (destinations.warehouse.locations.DuckDBFile: its memory settings)
    warehouse = DuckDBFile(path, timed_connect).open()
    timed = timed_connections[0]
    timed.steps.clear()
    try:
        base = _peak_rss_mb()
        start = time.perf_counter()
        summary = build_plan(warehouse, sync, SyncSources())
        seconds = time.perf_counter() - start
        peak = _peak_rss_mb()
        memory_limit = warehouse.fetch("select current_setting('memory_limit')")[0][0]
    finally:
        warehouse.close()
    return {
        "seconds": seconds,
        "steps": timed.steps,
        "desired": summary.desired,
        "adds": summary.adds,
        "updates": summary.updates,
        "removes": summary.removes,
        "invalid": summary.invalid,
        "excluded": summary.excluded_consent + summary.excluded_holdout,
        "skipped_rejected": summary.skipped_rejected,
        "confirmed_before": summary.confirmed_before,
        "base_rss_mb": base,
        "peak_rss_mb": peak,
        "memory_limit": memory_limit,
    }


def _child_floor(path: Path) -> dict:
    from cdp.warehouse import connect
    from destinations.warehouse import as_warehouse

    con = connect(path, read_only=True)
    try:
        base = _peak_rss_mb()
        start = time.perf_counter()
        adds, updates, removes, desired = as_warehouse(con).fetch(
            FLOOR_SQL.format(schema=_state_schema()), {"segment": SEGMENT, "sync_name": SYNC_NAME}
        )[0]
        seconds = time.perf_counter() - start
        peak = _peak_rss_mb()
    finally:
        con.close()
    return {
        "seconds": seconds,
        "adds": adds,
        "updates": updates,
        "removes": removes,
        "desired": desired,
        "base_rss_mb": base,
        "peak_rss_mb": peak,
    }


class _TimedDestination:
    """Delegates to a WebhookDestination, timing each ``send`` call."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.batch_size = inner.batch_size
        self.supported_modes = inner.supported_modes
        self.identifier_names = inner.identifier_names
        self.send_seconds: list[float] = []

    def send(self, changes):
        start = time.perf_counter()
        try:
            return self._inner.send(changes)
        finally:
            self.send_seconds.append(time.perf_counter() - start)

    def report(self):
        return self._inner.report()

    def close(self) -> None:
        self._inner.close()


def _webhook_destination(sync_name: str):
    from destinations.webhook import WebhookDestination

    return WebhookDestination(
        "hook",
        os.environ["BENCH_SYNC_URL"],
        os.environ["BENCH_SYNC_SECRET"],
        sync_name=sync_name,
        batch_size=BATCH_SIZE,
    )


def _statement_label(sql: str) -> str:
    """What a statement does, briefly: 'delete from x.state', 'select … from batch_rows'."""
    words = " ".join(line.split("--")[0] for line in sql.splitlines()).split()
    if not words:
        return "(empty)"
    if words[0].lower() in ("select", "with"):
        tables = [words[i + 1] for i, word in enumerate(words[:-1]) if word.lower() == "from"]
        return f"select … from {tables[0]}" if tables else "select"
    head = [words[0]]
    for word in words[1:7]:
        if word.lower() in ("as", "select", "where", "set", "values") or word.startswith("("):
            break
        head.append(word)
    return " ".join(head)


class _ProfiledConnection:
    """Delegates everything to a DuckDB connection; while ``phase`` is "send", adds each
    ``execute`` and ``commit`` to a per-statement total. Costs microseconds per call."""

    def __init__(self, con, totals: dict[str, list[float]]) -> None:
        self._con = con
        self._totals = totals
        self.phase = "pre"

    def _add(self, label: str, seconds: float) -> None:
        if self.phase == "send":
            entry = self._totals.setdefault(label, [0.0, 0])
            entry[0] += seconds
            entry[1] += 1

    def execute(self, sql: str, *args):
        start = time.perf_counter()
        result = self._con.execute(sql, *args)
        self._add(_statement_label(sql), time.perf_counter() - start)
        return result

    def commit(self):
        start = time.perf_counter()
        result = self._con.commit()
        self._add("commit", time.perf_counter() - start)
        return result

    def __getattr__(self, name: str):
        return getattr(self._con, name)


def _child_sync(path: Path) -> dict:
    import duckdb

    from cdp.warehouse import connect
    from destinations import state
    from destinations.engine import run_sync

    sync = _definition()
    marks: list[float] = []
    destinations: list[_TimedDestination] = []
    statements: dict[str, list[float]] = {}
    connections: list[_ProfiledConnection] = []
    rss_at_first_send: list[float] = []

    def profiled_connect(warehouse: Path):
        """Instrumentation only: the engine's own connection, timing statements while sending."""
        connections.append(_ProfiledConnection(connect(warehouse), statements))
        return connections[-1]

    def connect_destination(definition):
        destinations.append(_TimedDestination(_webhook_destination(definition.name)))
        return destinations[-1]

    def progress(done: int, total: int) -> None:
        marks.append(time.perf_counter())
        if not rss_at_first_send:
            rss_at_first_send.append(_peak_rss_mb())
            for connection in connections:
                connection.phase = "send"

    base = _peak_rss_mb()
    start = time.perf_counter()
    result = run_sync(
        sync,
        warehouse=path,
        connect_destination=connect_destination,
        progress=progress,
        open_warehouse=profiled_connect,
    )
    seconds = time.perf_counter() - start
    peak = _peak_rss_mb()

    sends = destinations[0].send_seconds if destinations else []
    batch_totals = [b - a for a, b in zip(marks, marks[1:], strict=False)]
    warehouse_per_batch = [total - send for total, send in zip(batch_totals, sends, strict=False)]
    tenth = max(1, len(warehouse_per_batch) // 10)
    pre_send = (marks[0] - start) if marks else seconds
    with duckdb.connect(str(path), read_only=True) as con:
        state_rows = state.held_count(con, SYNC_NAME)
    plan = result.plan
    return {
        "seconds": seconds,
        "status": result.status,
        "message": result.message,
        "sent": result.sent,
        "confirmed": result.confirmed,
        "failed": result.failed,
        "rejected": result.rejected,
        "planned": {"adds": plan.adds, "updates": plan.updates, "removes": plan.removes} if plan else None,
        "batches": len(sends),
        "pre_send_seconds": pre_send,
        "send_seconds": sum(sends),
        # everything after the plan that is not inside send: the commits land between batches
        # (per window of batches, destinations.engine.COMMIT_RECORDS) and after the last one
        "warehouse_seconds": seconds - pre_send - sum(sends),
        "after_seconds": (start + seconds - marks[-1]) if marks else 0.0,
        "wh_first_ms": 1000 * sum(warehouse_per_batch[:tenth]) / tenth if warehouse_per_batch else 0.0,
        "wh_last_ms": 1000 * sum(warehouse_per_batch[-tenth:]) / tenth if warehouse_per_batch else 0.0,
        "state_rows": state_rows,
        "statements": {label: {"seconds": t, "calls": n} for label, (t, n) in statements.items()},
        "base_rss_mb": base,
        "rss_at_first_send_mb": rss_at_first_send[0] if rss_at_first_send else peak,
        "peak_rss_mb": peak,
    }


def _child_send(path: Path) -> dict:
    """Transport floor: the run's own planned changes, POSTed with no warehouse work."""
    import duckdb

    from destinations.plan import planned_changes

    sync = _definition()
    with duckdb.connect(str(path), read_only=True) as con:
        changes = [change for _, change in planned_changes(con, sync)]
    destination = _webhook_destination(sync.name)
    confirmed = 0
    try:
        start = time.perf_counter()
        for first in range(0, len(changes), BATCH_SIZE):
            outcomes = destination.send(changes[first : first + BATCH_SIZE])
            confirmed += sum(1 for outcome in outcomes if outcome.status == "confirmed")
        seconds = time.perf_counter() - start
    finally:
        destination.close()
    return {"seconds": seconds, "sent": len(changes), "confirmed": confirmed}


# -- the benchmark (parent process) ----------------------------------------------------


def _sandbox_check(sandbox, expected_keys: set[str], expected_applied: int, fields_of=None) -> list[str]:
    """What is wrong with what the sandbox ended with (empty when right)."""
    problems = []
    state = sandbox.state
    if len(state) != len(expected_keys):
        problems.append(f"sandbox holds {len(state):,} records, expected {len(expected_keys):,}")
    if state.keys() != expected_keys:
        problems.append(
            f"sandbox keys differ: {len(state.keys() - expected_keys):,} unexpected, "
            f"{len(expected_keys - state.keys()):,} missing"
        )
    if fields_of is not None:
        wrong = sum(1 for key, record in state.items() if key in expected_keys and record["fields"] != fields_of(key))
        if wrong:
            problems.append(f"{wrong:,} records hold the wrong fields")
    if sandbox.applied != expected_applied:
        problems.append(f"sandbox applied {sandbox.applied:,} changes, expected {expected_applied:,}")
    if sandbox.duplicate_deliveries:
        problems.append(f"{sandbox.duplicate_deliveries:,} duplicate deliveries")
    return problems


def _expected_fields(key: str, *, n: int | None = None) -> dict:
    i = int(key[len("person") : -len("@example.com")])
    value = (i % 100000) / 100
    if n is not None and i < n and i % 200 == 7:
        value = (i % 100000 + 100) / 100
    return {"first_name": FIRST_NAMES[i % len(FIRST_NAMES)], "lifetime_value": value}


COLUMNS = (
    "benchmark",
    "method",
    "rows",
    "adds",
    "updates",
    "removes",
    "seconds",
    "rows_per_s",
    "peak_rss_mb",
    "plan_rss_mb",
    "base_rss_mb",
    "floor_seconds",
    "ratio_vs_floor",
    "correct",
    "detail",
)


def _row(**values) -> dict:
    """A table row with every column, in order ('' where a figure does not apply)."""
    unknown = set(values) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown columns {sorted(unknown)}")
    return {column: values.get(column, "") for column in COLUMNS}


def _e2e_detail(child: dict) -> str:
    return (
        f"pre {child['pre_send_seconds']:.1f}s / send {child['send_seconds']:.1f}s / "
        f"wh {child['warehouse_seconds']:.1f}s; wh/batch {child['wh_first_ms']:.0f}->{child['wh_last_ms']:.0f} ms "
        f"(first->last 10% of {child['batches']} batches)"
    )


def _log_statements(child: dict) -> None:
    """Where the send phase's warehouse time went, per statement (from the child's profile)."""
    statements = sorted(child.get("statements", {}).items(), key=lambda kv: -kv[1]["seconds"])
    batches = max(1, child["batches"])
    _log(
        "send-phase warehouse time by statement (ms per batch): "
        + "; ".join(f"{label} {1000 * v['seconds'] / batches:.1f}" for label, v in statements[:8])
    )


def _run_plan(n: int, workdir: Path) -> list[dict]:
    """Part A (and the incremental end-to-end run on the same warehouse) at size n."""
    from cdp.warehouse import connect
    from destinations.sandbox.webhook import WebhookSandbox

    sync = _definition()
    warehouse = workdir / f"plan-{n}.duckdb"
    adds, updates, removes = _change_counts(n)

    _log(f"A. {n:,} desired rows: generating sources into {warehouse}")
    start = time.perf_counter()
    with connect(warehouse) as con:
        _write_sources(con, n, changed=False)
        _log(f"generated in {time.perf_counter() - start:.1f}s; seeding confirmed state (untimed plan)")
        start = time.perf_counter()
        seeded = _seed_confirmed_state(con, sync)
        _log(f"state of {seeded:,} confirmed records in {time.perf_counter() - start:.1f}s; changing 1%")
        _write_sources(con, n, changed=True)
        con.execute("checkpoint")
    if seeded != n:
        _loud(f"seeding planned {seeded:,} adds at size {n:,}, expected {n:,}")

    expected = {"desired": n, "adds": adds, "updates": updates, "removes": removes}
    _log(f"timing build_plan (expect {adds:,} adds, {updates:,} updates, {removes:,} removes)")
    ours = _child("plan-only", warehouse)
    _log(
        f"build_plan {ours['seconds']:.2f}s, peak RSS {ours['peak_rss_mb']:.0f} MB "
        f"(memory_limit {ours['memory_limit']}); " + ", ".join(f"{k} {v:.2f}s" for k, v in ours["steps"].items())
    )
    ours_problems = [f"{k}: planned {ours[k]:,}, expected {v:,}" for k, v in expected.items() if ours[k] != v]
    ours_problems += [f"{k}: {ours[k]:,}, expected 0" for k in ("invalid", "excluded", "skipped_rejected") if ours[k]]
    if ours["confirmed_before"] != n:
        ours_problems.append(f"confirmed_before {ours['confirmed_before']:,}, expected {n:,}")
    if ours_problems:
        _loud(f"PLAN COUNTS WRONG at {n:,}: " + "; ".join(ours_problems))

    floor = _child("floor-only", warehouse)
    _log(f"floor {floor['seconds']:.2f}s, peak RSS {floor['peak_rss_mb']:.0f} MB")
    floor_problems = [f"{k}: counted {floor[k]:,}, expected {v:,}" for k, v in expected.items() if floor[k] != v]
    if floor_problems:
        _loud(f"FLOOR COUNTS WRONG at {n:,}: " + "; ".join(floor_problems))

    _log("incremental end to end: run_sync on the same warehouse -> fresh sandbox")
    with WebhookSandbox(max_batch=BATCH_SIZE) as sandbox:
        inc = _child("sync-only", warehouse, {"BENCH_SYNC_URL": sandbox.url, "BENCH_SYNC_SECRET": sandbox.secret})
        changed = set()
        changed.update(f"person{i}@example.com" for i in range(n, n + adds))
        changed.update(f"person{i}@example.com" for i in range(7, n, 200))
        inc_problems = _sandbox_check(
            sandbox, changed, adds + updates + removes, lambda key: _expected_fields(key, n=n)
        )
    sent = adds + updates + removes
    if inc["status"] != "succeeded" or inc["confirmed"] != sent or inc["sent"] != sent:
        inc_problems.append(f"run {inc['status']}: sent {inc['sent']:,}, confirmed {inc['confirmed']:,} of {sent:,}")
    if inc["planned"] != {"adds": adds, "updates": updates, "removes": removes}:
        inc_problems.append(f"planned {inc['planned']}")
    if inc["state_rows"] != n:
        inc_problems.append(f"state table holds {inc['state_rows']:,}, expected {n:,}")
    if inc_problems:
        _loud(f"INCREMENTAL RUN WRONG at {n:,}: " + "; ".join(inc_problems))
    _log(f"incremental run {inc['seconds']:.1f}s: {_e2e_detail(inc)}")
    _log_statements(inc)

    steps = ours["steps"]
    return [
        _row(
            benchmark="sync plan",
            method=PLAN,
            rows=n,
            adds=ours["adds"],
            updates=ours["updates"],
            removes=ours["removes"],
            seconds=ours["seconds"],
            rows_per_s=n / ours["seconds"],
            peak_rss_mb=ours["peak_rss_mb"],
            base_rss_mb=ours["base_rss_mb"],
            floor_seconds=floor["seconds"],
            ratio_vs_floor=ours["seconds"] / floor["seconds"],
            correct=not ours_problems,
            detail=" / ".join(f"{k} {steps.get(k, 0.0):.2f}s" for k in ("desired", "plan", "counts")),
        ),
        _row(
            benchmark="sync plan",
            method=PLAN_FLOOR,
            rows=n,
            adds=floor["adds"],
            updates=floor["updates"],
            removes=floor["removes"],
            seconds=floor["seconds"],
            rows_per_s=n / floor["seconds"],
            peak_rss_mb=floor["peak_rss_mb"],
            base_rss_mb=floor["base_rss_mb"],
            floor_seconds=floor["seconds"],
            ratio_vs_floor=1.0,
            correct=not floor_problems,
            detail="",
        ),
        _row(
            benchmark="sync e2e",
            method=E2E_INCREMENTAL,
            rows=sent,
            adds=inc["planned"]["adds"] if inc["planned"] else "",
            updates=inc["planned"]["updates"] if inc["planned"] else "",
            removes=inc["planned"]["removes"] if inc["planned"] else "",
            seconds=inc["seconds"],
            rows_per_s=inc["confirmed"] / inc["seconds"],
            peak_rss_mb=inc["peak_rss_mb"],
            plan_rss_mb=inc["rss_at_first_send_mb"],
            base_rss_mb=inc["base_rss_mb"],
            floor_seconds="",
            ratio_vs_floor="",
            correct=not inc_problems,
            detail=f"state {n:,}; " + _e2e_detail(inc),
        ),
    ]


def _run_e2e(m: int, workdir: Path) -> list[dict]:
    """Part B: a fresh sync of m records, then the transport floor for the same changes."""
    from cdp.warehouse import connect
    from destinations.sandbox.webhook import WebhookSandbox

    warehouse = workdir / f"e2e-{m}.duckdb"
    _log(f"B. fresh sync of {m:,} records: generating sources into {warehouse}")
    with connect(warehouse) as con:
        _write_sources(con, m, changed=False)
    expected_keys = {f"person{i}@example.com" for i in range(m)}
    with WebhookSandbox(max_batch=BATCH_SIZE) as sandbox:
        _log("run_sync in a child, sandbox in this process")
        ours = _child("sync-only", warehouse, {"BENCH_SYNC_URL": sandbox.url, "BENCH_SYNC_SECRET": sandbox.secret})
        ours_problems = _sandbox_check(sandbox, expected_keys, m, _expected_fields)
    if ours["status"] != "succeeded" or ours["confirmed"] != m or ours["sent"] != m:
        ours_problems.append(f"run {ours['status']}: sent {ours['sent']:,}, confirmed {ours['confirmed']:,} of {m:,}")
    if ours["state_rows"] != m:
        ours_problems.append(f"state table holds {ours['state_rows']:,}, expected {m:,}")
    if ours_problems:
        _loud(f"FRESH SYNC WRONG at {m:,}: " + "; ".join(ours_problems))
    _log(f"run_sync {ours['seconds']:.1f}s, peak RSS {ours['peak_rss_mb']:.0f} MB: {_e2e_detail(ours)}")
    _log_statements(ours)

    with WebhookSandbox(max_batch=BATCH_SIZE) as sandbox:
        _log("transport floor: WebhookDestination.send in a child, fresh sandbox in this process")
        floor = _child("send-only", warehouse, {"BENCH_SYNC_URL": sandbox.url, "BENCH_SYNC_SECRET": sandbox.secret})
        floor_problems = _sandbox_check(sandbox, expected_keys, m, _expected_fields)
    if floor["sent"] != m or floor["confirmed"] != m:
        floor_problems.append(f"sent {floor['sent']:,}, confirmed {floor['confirmed']:,} of {m:,}")
    if floor_problems:
        _loud(f"TRANSPORT FLOOR WRONG at {m:,}: " + "; ".join(floor_problems))
    _log(f"transport floor {floor['seconds']:.1f}s")

    return [
        _row(
            benchmark="sync e2e",
            method=E2E_FRESH,
            rows=m,
            adds=ours["planned"]["adds"] if ours["planned"] else "",
            updates=ours["planned"]["updates"] if ours["planned"] else "",
            removes=ours["planned"]["removes"] if ours["planned"] else "",
            seconds=ours["seconds"],
            rows_per_s=ours["confirmed"] / ours["seconds"],
            peak_rss_mb=ours["peak_rss_mb"],
            plan_rss_mb=ours["rss_at_first_send_mb"],
            base_rss_mb=ours["base_rss_mb"],
            floor_seconds=floor["seconds"],
            ratio_vs_floor=ours["seconds"] / floor["seconds"],
            correct=not ours_problems,
            detail=_e2e_detail(ours),
        ),
        _row(
            benchmark="sync e2e",
            method=TRANSPORT_FLOOR,
            rows=m,
            adds=m,
            updates=0,
            removes=0,
            seconds=floor["seconds"],
            rows_per_s=floor["confirmed"] / floor["seconds"],
            peak_rss_mb="",
            base_rss_mb="",
            floor_seconds=floor["seconds"],
            ratio_vs_floor=1.0,
            correct=not floor_problems,
            detail="",
        ),
    ]


def run(sizes: list[int]) -> list[dict]:
    workdir = Path(tempfile.mkdtemp(prefix="cdp-bench-sync-"))
    keep = os.environ.get("CDP_BENCH_KEEP") == "1"
    rows: list[dict] = []
    try:
        for n in sizes:
            rows.extend(_run_plan(n, workdir))
            for path in workdir.glob(f"plan-{n}.duckdb*"):
                if not keep:
                    path.unlink()
        e2e_sizes = sorted({min(n, E2E_MAX) for n in sizes} | {min(E2E_SMALL, max(sizes))})
        for m in e2e_sizes:
            rows.extend(_run_e2e(m, workdir))
    finally:
        if keep:
            _log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return rows


CHILD_STEPS = {
    "plan-only": _child_plan,
    "floor-only": _child_floor,
    "sync-only": _child_sync,
    "send-only": _child_send,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sizes", nargs="*", help="desired rows N (default: 1000000)")
    for step in CHILD_STEPS:
        parser.add_argument(f"--{step}", metavar="PATH", help="(internal) measure one step on warehouse PATH")
    args = parser.parse_args(argv)
    for step, function in CHILD_STEPS.items():
        path = getattr(args, step.replace("-", "_"))
        if path:
            result = function(Path(path))
            print(RESULT_MARKER + json.dumps(result), flush=True)
            return

    from rich.console import Console

    from benchmarks.run import print_table

    requested = [int(size.replace("_", "")) for size in args.sizes] or [1_000_000]
    print_table("benchmark: sync", run(requested), Console())


if __name__ == "__main__":
    main()
