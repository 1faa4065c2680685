"""Every connector against its platform's emulator: 100k adds, then 100k removes, end to end
through ``run_sync``, beside the connector's ``send`` alone on the same changes.

For each connector (``TARGETS``) and each size N:

1. a fresh temp DuckDB file holds the three tables the engine reads, generated with
   ``range()``: ``main.segments``, ``main.sync_profile_fields`` (N profiles with email,
   phone, names, city, postal code, country, lifetime value; consent true) and
   ``main.segment_membership`` (all N in the segment);
2. the platform's emulator runs in the benchmark's own process (``destinations.sandbox``);
   ``run_sync`` runs in a child process (``python -m benchmarks.bench_connectors --child``)
   with the connector built by ``from_config`` from the target's options, exactly as
   destinations.yml would build it — the platform's default batch size and limits;
3. ``adds``: a fresh sync (empty state) sends N adds; then every profile leaves the
   segment and a forced mirror run sends N ``removes``. Each row: records, seconds,
   records/s, requests the emulator answered, the child's peak RSS (VmHWM: the child image
   alone), and ``correct`` (the run succeeded, every record confirmed, and the emulator
   holds N after the adds and 0 after the removes);
4. floor: ``send`` alone — a child reads the same N changes from a dry-run plan
   (``destinations.plan.planned_changes``, untimed, held in memory) and hands them to the
   connector's ``send`` in its batch size against a fresh emulator, no warehouse. Then the
   same for the removals. ``ratio`` = end-to-end seconds / send-alone seconds.

Platform limits are the real ones (batch sizes, rate windows), so a rate-limited platform's
figure is the platform's, not ours: the row's ``note`` says what bounds it.

    .venv/bin/python -m benchmarks.run connectors                  # N = 100,000
    .venv/bin/python -m benchmarks.run connectors --sizes 20000
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.bench_sync import _peak_rss_mb

REPO_ROOT = Path(__file__).resolve().parent.parent
SEGMENT = "bench_audience"
SYNC_NAME = "bench_connector"
RESULT_MARKER = "BENCH_CONNECTORS_RESULT "


# -- what each platform needs ------------------------------------------------------------


@dataclass
class Target:
    """One connector and how to run it against its emulator."""

    #: connector type (destinations.config.CONNECTORS)
    kind: str
    #: the sync's identifiers / fields / consent purpose over the benchmark's columns
    sync: dict[str, Any]
    #: a context manager starting the platform's emulator; yields a handle
    start: Callable[[], Any]
    #: destinations.yml options for a connector pointed at the running emulator
    options: Callable[[Any], dict[str, Any]]
    #: the environment holding the secrets the options name
    env: Callable[[Any], dict[str, str]]
    #: how many records the platform holds now
    held: Callable[[Any], int]
    #: how many requests the emulator has answered so far
    requests: Callable[[Any], int]
    #: what bounds the figure, when the platform's own limits do
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@contextmanager
def _webhook() -> Iterator[Any]:
    from destinations.sandbox.webhook import WebhookSandbox

    with WebhookSandbox(max_batch=500) as sandbox:
        yield sandbox


@contextmanager
def _mailchimp() -> Iterator[Any]:
    from destinations.sandbox.mailchimp import MailchimpSandbox

    with MailchimpSandbox() as sandbox:
        yield sandbox


@dataclass
class _Served:
    """An emulator on the sandbox host, and the base URL a connector is given."""

    emulator: Any
    base_url: str


@contextmanager
def _klaviyo() -> Iterator[_Served]:
    """Klaviyo's emulator with Klaviyo's own limits and windows (1 s burst, 60 s steady)."""
    from destinations.sandbox.klaviyo import KlaviyoEmulator
    from destinations.sandbox.server import SandboxServer

    emulator = KlaviyoEmulator()
    with SandboxServer([emulator]) as server:
        yield _Served(emulator, f"{server.base_url(emulator)}/api")


@contextmanager
def _meta() -> Iterator[Any]:
    from destinations.sandbox.meta import MetaEmulator
    from destinations.sandbox.server import SandboxServer

    emulator = MetaEmulator()
    with SandboxServer([emulator]) as server:
        emulator.base_url = server.base_url(emulator)  # type: ignore[attr-defined]
        yield emulator


def _meta_options(emulator: Any) -> dict[str, Any]:
    from destinations.sandbox.meta import DEFAULT_AUDIENCE_ID

    return {"audience_id": DEFAULT_AUDIENCE_ID, "access_token_env": "BENCH_META_TOKEN", "base_url": emulator.base_url}


@contextmanager
def _google_customer_match() -> Iterator[Any]:
    from destinations.sandbox.datamanager import DataManagerEmulator
    from destinations.sandbox.server import SandboxServer

    emulator = DataManagerEmulator()
    with SandboxServer([emulator]) as server:
        yield server, emulator


def _google_held(running: Any) -> int:
    from destinations.sandbox.datamanager import DEFAULT_AUDIENCE_ID

    return len(running[1].snapshot()["audiences"][DEFAULT_AUDIENCE_ID]["emails"])


def _google_options(running: Any) -> dict[str, Any]:
    from destinations.sandbox.datamanager import DEFAULT_ACCOUNT_ID, DEFAULT_AUDIENCE_ID

    return {
        "base_url": f"{running[0].base_url(running[1])}/v1",
        "access_token_env": "BENCH_GOOGLE_ACCESS_TOKEN",
        "operating_account_id": DEFAULT_ACCOUNT_ID,
        "audience_id": DEFAULT_AUDIENCE_ID,
    }


TARGETS: dict[str, Target] = {
    "webhook": Target(
        kind="webhook",
        sync={
            "identifiers": {"email": "email"},
            "fields": {"first_name": "first_name", "lifetime_value": "lifetime_value"},
            "consent_purpose": "email_marketing",
        },
        start=_webhook,
        options=lambda sandbox: {"url": sandbox.url, "secret_env": "BENCH_WEBHOOK_SECRET", "batch_size": 500},
        env=lambda sandbox: {"BENCH_WEBHOOK_SECRET": sandbox.secret},
        held=lambda sandbox: len(sandbox.state),
        requests=lambda sandbox: len(sandbox.requests),
    ),
    "mailchimp": Target(
        kind="mailchimp",
        sync={
            "identifiers": {"email": "email"},
            "fields": {"FNAME": "first_name", "LNAME": "last_name"},
            "consent_purpose": "email_marketing",
        },
        start=_mailchimp,
        options=lambda sandbox: {
            "base_url": sandbox.base_url,
            "api_key_env": "BENCH_MAILCHIMP_API_KEY",
            "list_id": sandbox.list_id,
        },
        env=lambda sandbox: {"BENCH_MAILCHIMP_API_KEY": sandbox.api_key},
        held=lambda sandbox: sandbox.emulator.held_count(),
        requests=lambda sandbox: len(sandbox.emulator.requests),
        note="removes: one DELETE per member, 5 in flight (no batch archive; 10 connections a key)",
    ),
    "klaviyo": Target(
        kind="klaviyo",
        sync={
            "identifiers": {"email": "email"},
            "fields": {"first_name": "first_name", "lifetime_value": "lifetime_value"},
            "consent_purpose": "email_marketing",
        },
        start=_klaviyo,
        options=lambda served: {
            "base_url": served.base_url,
            "api_key_env": "BENCH_KLAVIYO_API_KEY",
            "list_id": "SbxL1s",
        },
        env=lambda served: {"BENCH_KLAVIYO_API_KEY": served.emulator.api_key},
        held=lambda served: len(served.emulator.members()),
        requests=lambda served: len(served.emulator.requests),
        note=(
            "bound by Klaviyo's rate limits: per 100k adds 1,000 profile look-ups (tier L, 700/min) and "
            "100 list calls + 10 import jobs (tier M, 150/min); removals by cached id: 100 list calls (M)"
        ),
    ),
    "meta_custom_audience": Target(
        kind="meta_custom_audience",
        sync={
            "identifiers": {
                "email": "email",
                "phone": "phone",
                "first_name": "first_name",
                "last_name": "last_name",
                "city": "city",
                "zip": "postal_code",
                "country": "country",
            },
            "fields": {},
            "consent_purpose": "ads_personalization",
        },
        start=_meta,
        options=_meta_options,
        env=lambda emulator: {"BENCH_META_TOKEN": emulator.access_token},
        held=lambda emulator: len(emulator.emails()),
        requests=lambda emulator: len(emulator.requests),
        note=(
            "adds: 10,000 rows a POST (Meta's limit); normalising and hashing 7 keys a row is ~40% of send (phone "
            "parsing half of that); removals ride in the DELETE's query string as the SDK sends them, "
            "~370 rows a 30,000-character URL, which urllib3 re-checks byte by byte"
        ),
    ),
    "google_customer_match": Target(
        kind="google_customer_match",
        sync={
            "identifiers": {
                "email": "email",
                "phone": "phone",
                "first_name": "first_name",
                "last_name": "last_name",
                "zip": "postal_code",
                "country": "country",
            },
            "consent_purpose": "ads_personalization",
        },
        start=_google_customer_match,
        options=_google_options,
        env=lambda running: {"BENCH_GOOGLE_ACCESS_TOKEN": running[1].token},
        held=_google_held,
        requests=lambda running: len(running[1].requests),
        note=(
            "Data Manager: 10,000 members a request; every request polled until done (PROCESSING at the first "
            "poll, then 0.5 s to the next); email, phone and name+ZIP hashed per member"
        ),
    ),
}


# -- the warehouse ----------------------------------------------------------------------


def _write_sources(path: Path, n: int, *, members: bool) -> None:
    from cdp.warehouse import connect

    with connect(path) as con:
        con.execute(f"create or replace table main.segments as select '{SEGMENT}' as segment_name")
        con.execute(
            f"""
            create or replace table main.sync_profile_fields as
            select
                'p' || i as profile_id,
                'person' || i || '@example.com' as email,
                '+1650555' || lpad(cast(i % 10000 as varchar), 4, '0') as phone,
                ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara'][(i % 5) + 1] as first_name,
                'Lovelace' as last_name,
                'Menlo Park' as city,
                lpad(cast(94000 + i % 999 as varchar), 5, '0') as postal_code,
                'US' as country,
                cast((i % 100000) / 100 as decimal(18, 2)) as lifetime_value,
                true as has_email_marketing_consent,
                true as has_ads_personalization_consent,
                false as is_deletion_requested
            from range({n}) as t(i)
            """
        )
        con.execute(
            f"""
            create or replace table main.segment_membership as
            select '{SEGMENT}' as segment_name, 'p' || i as profile_id
            from range({n}) as t(i)
            where {"true" if members else "false"}
            """
        )


def _definition(target: Target):
    from destinations.config import DestinationConfig
    from destinations.definitions import parse_sync_definition

    spec = {"segment": SEGMENT, "destination": "bench", "mode": "mirror", "key": "email", **target.sync}
    destinations = {"bench": DestinationConfig("bench", target.kind, {})}
    return parse_sync_definition({"name": SYNC_NAME, "depends_on": {"nodes": []}}, spec, destinations)


# -- children: one measured step each ----------------------------------------------------


def _connector(target: Target, options: dict[str, Any]):
    from destinations.config import connector_class

    return connector_class(target.kind).from_config("bench", options, os.environ, sync_name=SYNC_NAME)


def _child_sync(kind: str, path: Path, options: dict[str, Any]) -> dict[str, Any]:
    from destinations.engine import run_sync

    target = TARGETS[kind]
    base = _peak_rss_mb()
    start = time.perf_counter()
    result = run_sync(
        _definition(target), warehouse=path, connect_destination=lambda _: _connector(target, options), force=True
    )
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "status": result.status,
        "message": result.message,
        "sent": result.sent,
        "confirmed": result.confirmed,
        "report": result.destination_report,
        "base_rss_mb": base,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _child_send(kind: str, path: Path, options: dict[str, Any]) -> dict[str, Any]:
    """The plan's changes (read untimed, held in memory) handed to ``send`` alone."""
    from cdp.warehouse import connect
    from destinations.plan import planned_changes

    target = TARGETS[kind]
    with connect(path, read_only=True) as con:
        changes = [change for _, change in planned_changes(con, _definition(target))]
    destination = _connector(target, options)
    size = destination.batch_size
    outcomes = []
    start = time.perf_counter()
    try:
        for first in range(0, len(changes), size):
            outcomes += destination.send(changes[first : first + size])
    finally:
        destination.close()
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "sent": len(changes),
        "confirmed": sum(1 for outcome in outcomes if outcome.status == "confirmed"),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _child(step: str, kind: str, path: Path, options: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_connectors", "--child", step, kind, str(path), json.dumps(options)],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"child {step} {kind} exited {completed.returncode}:\n{completed.stdout[-2000:]}")
    return json.loads(lines[-1][len(RESULT_MARKER) :])


# -- one target ---------------------------------------------------------------------------


def _log(message: str) -> None:
    print(f"[connectors {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _plan(path: Path, target: Target) -> None:
    """Untimed: write the plan table the send-alone child reads (what the run would send)."""
    from cdp.warehouse import connect
    from destinations import state
    from destinations.plan import SyncSources, build_plan

    with connect(path) as con:
        state.ensure_tables(con)
        build_plan(con, _definition(target), SyncSources())


def _row(name: str, op: str, method: str, n: int, result: dict[str, Any], requests: int, correct: bool) -> dict:
    return {
        "connector": name,
        "op": op,
        "method": method,
        "records": n,
        "seconds": result["seconds"],
        "records_per_s": n / result["seconds"],
        "requests": requests,
        "peak_rss_mb": result["peak_rss_mb"],
        "correct": correct,
    }


def _measured(target: Target, emulator: Any, step: str, path: Path) -> tuple[dict[str, Any], int]:
    before = target.requests(emulator)
    result = _child(step, target.kind, path, target.options(emulator), target.env(emulator))
    return result, target.requests(emulator) - before


def _run_target(name: str, n: int, workdir: Path) -> list[dict[str, Any]]:
    target = TARGETS[name]
    path = workdir / f"{name}.duckdb"
    rows: list[dict[str, Any]] = []
    with target.start() as emulator:
        for op, members in (("add", True), ("remove", False)):
            # end to end: the adds on an empty state, then the removals of everything the adds left
            _write_sources(path, n, members=members)
            _log(f"{name}: {n:,} {op}s end to end")
            e2e, requests = _measured(target, emulator, "sync", path)
            expected = n if op == "add" else 0
            correct = e2e["status"] == "succeeded" and e2e["confirmed"] == n and target.held(emulator) == expected
            row = _row(name, op, "ours: run_sync end to end", n, e2e, requests, correct)
            row["platform"] = json.dumps(e2e["report"], sort_keys=True) if e2e["report"] else ""
            row["note"] = target.note if correct else e2e["message"][:200]
            rows.append(row)

            # send alone: the same changes from a plan, against a fresh emulator in the same
            # starting state (for removals: filled by an untimed run of the same sync)
            floor = workdir / f"{name}-{op}-floor.duckdb"
            with target.start() as fresh:
                if op == "remove":
                    _write_sources(floor, n, members=True)
                    fill = _child("sync", target.kind, floor, target.options(fresh), target.env(fresh))
                    if fill["confirmed"] != n:
                        raise RuntimeError(f"{name}: filling the floor's emulator failed: {fill['message']}")
                _write_sources(floor, n, members=members)
                _plan(floor, target)
                _log(f"{name}: {n:,} {op}s through send alone")
                alone, requests = _measured(target, fresh, "send", floor)
                alone_correct = alone["confirmed"] == n and target.held(fresh) == expected
            row = _row(name, op, "floor: connector send alone", n, alone, requests, alone_correct)
            row["ratio"] = e2e["seconds"] / alone["seconds"]
            rows.append(row)
    return rows


def run(sizes: list[int], targets: list[str] | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    keep = os.environ.get("CDP_BENCH_KEEP") == "1"
    for n in sizes:
        for name in targets or list(TARGETS):
            workdir = Path(tempfile.mkdtemp(prefix=f"bench-connectors-{name}-"))
            try:
                rows += _run_target(name, n, workdir)
            finally:
                if keep:
                    _log(f"kept {workdir}")
                else:
                    import shutil

                    shutil.rmtree(workdir, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        step, kind, path, options = argv[1], argv[2], Path(argv[3]), json.loads(argv[4])
        result = (_child_sync if step == "sync" else _child_send)(kind, path, options)
        print(RESULT_MARKER + json.dumps(result, default=str), flush=True)
        return
    from rich.console import Console

    from benchmarks.run import print_table

    sizes = [int(arg) for arg in argv if arg.isdigit()] or [100_000]
    targets = [arg for arg in argv if not arg.isdigit()] or None
    print_table("benchmark: connectors", run(sizes, targets), Console())


if __name__ == "__main__":
    main()
