"""A tiny warehouse for sync tests: hand-made segment_membership / sync_profile_fields /
segments tables (the shapes dbt builds), a platform sandbox to receive (the webhook
receiver unless a contract harness names another platform), and helpers to run a sync and
read what the destination and the warehouse hold.

Building these tables directly (not through dbt) keeps a sync test to milliseconds,
so the property test can afford hundreds of runs; the end-to-end tests against a real
dbt-built warehouse live in test_sync_pipeline.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.harness import ConnectorHarness
from contract.webhook import WebhookHarness

from cdp.warehouse import connect
from destinations.base import Destination
from destinations.config import DestinationConfig
from destinations.definitions import SyncDefinition, parse_sync_definition
from destinations.engine import SyncRunResult, run_sync

SEGMENT = "test_audience"
#: the columns of the hand-made sync_profile_fields, in order
PROFILE_COLUMNS = (
    "profile_id varchar",
    "email varchar",
    "phone varchar",
    "first_name varchar",
    "last_name varchar",
    "city varchar",
    "postal_code varchar",
    "country varchar",
    "lifetime_value decimal(18, 2)",
    "has_email_marketing_consent boolean",
    "has_ads_personalization_consent boolean",
    "is_deletion_requested boolean",
)


#: the webhook connection the default definition() syncs to, for tests that parse definitions themselves
DESTINATIONS = {"hook": DestinationConfig("hook", "webhook", {})}


@dataclass(frozen=True)
class Person:
    email: str | None
    first_name: str | None = "Ada"
    lifetime_value: float = 10.0
    consent: bool = True
    deleted: bool = False
    in_segment: bool = True
    phone: str | None = None
    last_name: str | None = "Lovelace"
    city: str | None = "London"
    postal_code: str | None = "SW1A 1AA"
    country: str | None = "GB"


def definition(name: str = "test_sync", *, harness: ConnectorHarness | None = None, **overrides: Any) -> SyncDefinition:
    """A sync of the test segment to the harness's platform (the webhook by default), with the
    harness's identifier and field mapping unless ``overrides`` say otherwise."""
    harness = harness or WebhookHarness()
    spec = {
        "segment": SEGMENT,
        "destination": "hook",
        "mode": "mirror",
        "key": "email",
        **harness.sync_mapping(),
        **overrides,
    }
    spec = {key: value for key, value in spec.items() if value is not None}
    destinations = {"hook": DestinationConfig("hook", harness.connector_type, {})}
    return parse_sync_definition({"name": name, "depends_on": {"nodes": []}}, spec, destinations)


class World:
    def __init__(self, path: Path, sandbox: Any, harness: ConnectorHarness | None = None):
        self.path = path
        self.sandbox = sandbox
        self.harness = harness or WebhookHarness()
        self.people: dict[str, Person] = {}

    def set_people(self, people: Mapping[str, Person], *, min_size: int | None = None) -> None:
        """Replace the warehouse's snapshot: profiles, their fields and the segment (with the
        minimum size its YAML would give it)."""
        self.people = dict(people)
        rows = [
            (pid, p.email, p.phone, p.first_name, p.last_name, p.city, p.postal_code, p.country)
            + (p.lifetime_value, p.consent, p.consent, p.deleted)
            for pid, p in sorted(self.people.items())
        ]
        self.harness.expect_keys([p.email for p in self.people.values() if p.email])
        with connect(self.path) as con:
            con.execute("create or replace table main.segments (segment_name varchar, min_size integer)")
            con.execute("insert into main.segments values (?, ?)", [SEGMENT, min_size])
            con.execute(f"create or replace table main.sync_profile_fields ({', '.join(PROFILE_COLUMNS)})")
            if rows:
                placeholders = ", ".join("?" * len(PROFILE_COLUMNS))
                con.executemany(f"insert into main.sync_profile_fields values ({placeholders})", rows)
            con.execute("create or replace table main.segment_membership (segment_name varchar, profile_id varchar)")
            members = [(SEGMENT, pid) for pid, p in sorted(self.people.items()) if p.in_segment]
            if members:
                con.executemany("insert into main.segment_membership values (?, ?)", members)

    def destination(self, *, batch_size: int = 3, read_timeout: float = 2.0, max_retries: int = 2) -> Destination:
        """A connector to this world's sandbox, tuned for tests (no back-off, short waits)."""
        return self.harness.build(
            self.sandbox, batch_size=batch_size, max_retries=max_retries, max_retry_after=2.0, read_timeout=read_timeout
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
        """The destination's final state: key -> fields (in this world's field names)."""
        return self.harness.held(self.sandbox)

    def desired(self, *, holdout: Callable[[str], bool] = lambda pid: False) -> dict[str, dict[str, Any]]:
        """What the destination should hold: key -> fields (none for a platform without fields)."""
        return {
            p.email: {"first_name": p.first_name, "lifetime_value": p.lifetime_value}
            if self.harness.carries_fields
            else {}
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
