"""A tiny warehouse for sync tests: hand-made segment_membership / sync_profile_fields /
segments tables (the shapes dbt builds), a WebhookSandbox to receive, and helpers to
run a sync and read what the destination and the warehouse hold.

Building these tables directly (not through dbt) keeps a sync test to milliseconds,
so the property test can afford hundreds of runs; the end-to-end tests against a real
dbt-built warehouse live in test_sync_pipeline.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdp.warehouse import connect
from destinations.config import DestinationConfig
from destinations.definitions import SyncDefinition, parse_sync_definition
from destinations.engine import SyncRunResult, run_sync
from destinations.sandbox.webhook import WebhookSandbox
from destinations.webhook import WebhookDestination

SEGMENT = "test_audience"
DESTINATIONS = {"hook": DestinationConfig("hook", "webhook", {})}


@dataclass(frozen=True)
class Person:
    email: str | None
    first_name: str = "Ada"
    lifetime_value: float = 10.0
    consent: bool = True
    deleted: bool = False
    in_segment: bool = True


def definition(name: str = "test_sync", **overrides: Any) -> SyncDefinition:
    spec = {
        "segment": SEGMENT,
        "destination": "hook",
        "mode": "mirror",
        "key": "email",
        "identifiers": {"email": "email"},
        "fields": {"first_name": "first_name", "lifetime_value": "lifetime_value"},
        "consent_purpose": "email_marketing",
        **overrides,
    }
    spec = {key: value for key, value in spec.items() if value is not None}
    return parse_sync_definition({"name": name, "depends_on": {"nodes": []}}, spec, DESTINATIONS)


class World:
    def __init__(self, path: Path, sandbox: WebhookSandbox):
        self.path = path
        self.sandbox = sandbox
        self.people: dict[str, Person] = {}

    def set_people(self, people: Mapping[str, Person]) -> None:
        """Replace the warehouse's snapshot: profiles, their fields and the segment."""
        self.people = dict(people)
        rows = [
            (pid, p.email, p.first_name, p.lifetime_value, p.consent, p.deleted)
            for pid, p in sorted(self.people.items())
        ]
        with connect(self.path) as con:
            con.execute("create or replace table main.segments (segment_name varchar)")
            con.execute("insert into main.segments values (?)", [SEGMENT])
            con.execute(
                """
                create or replace table main.sync_profile_fields (
                    profile_id varchar, email varchar, first_name varchar, lifetime_value decimal(18, 2),
                    has_email_marketing_consent boolean, is_deletion_requested boolean
                )
                """
            )
            if rows:
                con.executemany("insert into main.sync_profile_fields values (?, ?, ?, ?, ?, ?)", rows)
            con.execute("create or replace table main.segment_membership (segment_name varchar, profile_id varchar)")
            members = [(SEGMENT, pid) for pid, p in sorted(self.people.items()) if p.in_segment]
            if members:
                con.executemany("insert into main.segment_membership values (?, ?)", members)

    def destination(
        self, *, batch_size: int = 3, read_timeout: float = 2.0, max_retries: int = 2
    ) -> WebhookDestination:
        return WebhookDestination(
            "hook",
            self.sandbox.url,
            self.sandbox.secret,
            batch_size=batch_size,
            timeout=read_timeout,
            max_retries=max_retries,
            backoff_factor=0.0,
            max_retry_after=2.0,
        )

    def run(
        self,
        sync: SyncDefinition,
        *,
        batch_size: int = 3,
        read_timeout: float = 2.0,
        after_send: Callable[[int], None] | None = None,
        **options: Any,
    ) -> SyncRunResult:
        return run_sync(
            sync,
            warehouse=self.path,
            connect_destination=lambda _: self.destination(batch_size=batch_size, read_timeout=read_timeout),
            after_send=after_send,
            **options,
        )

    # -- what the parts hold ---------------------------------------------------------

    def received(self) -> dict[str, dict[str, Any]]:
        """The destination's final state: key -> fields."""
        return {key: record["fields"] for key, record in self.sandbox.state.items()}

    def desired(self, *, holdout: Callable[[str], bool] = lambda pid: False) -> dict[str, dict[str, Any]]:
        return {
            p.email: {"first_name": p.first_name, "lifetime_value": p.lifetime_value}
            for pid, p in self.people.items()
            if p.in_segment and p.consent and not p.deleted and p.email and not holdout(pid)
        }

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with connect(self.path, read_only=True) as con:
            return con.execute(sql, params or []).fetchall()

    def state(self, sync_name: str = "test_sync") -> dict[str, str]:
        return dict(self.query("select record_key, payload_hash from cdp_sync.state where sync_name = ?", [sync_name]))

    def last_run(self, sync_name: str = "test_sync") -> dict[str, Any]:
        with connect(self.path, read_only=True) as con:
            cursor = con.execute(
                "select * from cdp_sync.runs where sync_name = ? order by started_at desc limit 1", [sync_name]
            )
            names = [column[0] for column in cursor.description]
            return dict(zip(names, cursor.fetchall()[0], strict=False))


def people(n: int, **overrides: Any) -> dict[str, Person]:
    return {f"p{i:03d}": Person(email=f"person{i}@example.com", **overrides) for i in range(n)}
