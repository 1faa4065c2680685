"""A tiny warehouse for sync tests: hand-made segment_membership / sync_profile_fields /
segments tables (the shapes dbt builds), a platform sandbox to receive (the webhook
receiver unless a contract harness names another platform), and helpers to run a sync and
read what the destination and the warehouse hold.

Building these tables directly (not through dbt) keeps a sync test to milliseconds,
so the property test can afford hundreds of runs; the end-to-end tests against a real
dbt-built warehouse live in test_sync_pipeline.py.

A world lives on any engine with transactions: a DuckDB file (``path``, the default) or a
Postgres database (``location``; tests/sync_engines.py's ``sync_engine`` fixture gives one per
test). Everything here reaches it through the warehouse interface (destinations/warehouse/).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
from contract.harness import ConnectorHarness
from contract.webhook import WebhookHarness

from destinations.base import Destination
from destinations.config import DestinationConfig
from destinations.definitions import SyncDefinition, parse_sync_definition
from destinations.engine import SyncRunResult, run_sync
from destinations.sql_templates import dialect_macros
from destinations.warehouse import Warehouse
from destinations.warehouse.locations import DuckDBFile, Location

SEGMENT = "test_audience"
#: the columns of the hand-made sync_profile_fields, in order, with their types
PROFILE_COLUMNS: dict[str, pa.DataType] = {
    "profile_id": pa.string(),
    "email": pa.string(),
    "phone": pa.string(),
    "first_name": pa.string(),
    "last_name": pa.string(),
    "city": pa.string(),
    "postal_code": pa.string(),
    "country": pa.string(),
    "lifetime_value": pa.decimal128(18, 2),
    "has_email_marketing_consent": pa.bool_(),
    "has_ads_personalization_consent": pa.bool_(),
    "is_deletion_requested": pa.bool_(),
}


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


def _table(columns: Mapping[str, pa.DataType], rows: list[tuple]) -> pa.Table:
    return pa.table(
        {
            name: pa.array([row[index] for row in rows], data_type)
            for index, (name, data_type) in enumerate(columns.items())
        }
    )


class World:
    def __init__(
        self,
        path: Path,
        sandbox: Any,
        harness: ConnectorHarness | None = None,
        *,
        location: Location | None = None,
        state_store: Location | None = None,
    ):
        """A world in the DuckDB file ``path``, or in ``location`` (emptied first: a Postgres database),
        its sync state in the warehouse itself or in ``state_store``."""
        self.path = path
        self.location = location or DuckDBFile(Path(path).resolve())
        self.state_store = state_store or self.location
        self.sandbox = sandbox
        self.harness = harness or WebhookHarness()
        self.people: dict[str, Person] = {}
        for place in [self.location] + ([self.state_store] if self.state_store != self.location else []):
            if place.engine != "duckdb":  # a database shared by a module's worlds: empty it
                with place.open() as wh:
                    wh.execute("drop schema if exists cdp_sync cascade")
                    wh.execute("create schema if not exists main")
                    for table in ("segments", "sync_profile_fields", "segment_membership", "experiment_assignments"):
                        wh.execute(f"drop table if exists main.{table}")

    def open(self) -> Warehouse:
        """A connection to where this world's sync state lives (close it: use ``with``)."""
        return self.state_store.open()

    @property
    def dialect(self) -> str:
        """The state store's dialect (what :meth:`query` runs on)."""
        return self.state_store.engine

    def sha256(self, expression: str) -> str:
        """SQL for the lower-hex SHA-256 of ``expression`` in this world's dialect."""
        return str(dialect_macros(self.dialect).sha256(expression))

    def set_people(self, people: Mapping[str, Person], *, min_size: int | None = None) -> None:
        """Replace the warehouse's snapshot: profiles, their fields and the segment (with the
        minimum size its YAML would give it)."""
        self.people = dict(people)
        rows = [
            (pid, p.email, p.phone, p.first_name, p.last_name, p.city, p.postal_code, p.country)
            + (None if p.lifetime_value is None else Decimal(str(p.lifetime_value)), p.consent, p.consent, p.deleted)
            for pid, p in sorted(self.people.items())
        ]
        self.harness.expect_keys([p.email for p in self.people.values() if p.email])
        members = [(SEGMENT, pid) for pid, p in sorted(self.people.items()) if p.in_segment]
        with self.location.open() as wh:
            segments = _table({"segment_name": pa.string(), "min_size": pa.int32()}, [(SEGMENT, min_size)])
            wh.load_rows("main.segments", segments, temporary=False)
            wh.load_rows("main.sync_profile_fields", _table(PROFILE_COLUMNS, rows), temporary=False)
            membership = _table({"segment_name": pa.string(), "profile_id": pa.string()}, members)
            wh.load_rows("main.segment_membership", membership, temporary=False)

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
            warehouse=self.location,
            state_store=self.state_store,
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

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        """Rows of ``sql`` (``:name`` binds) in this world's warehouse."""
        with self.open() as wh:
            return wh.fetch(sql, params)

    def state(self, sync_name: str = "test_sync") -> dict[str, str]:
        return dict(
            self.query(
                "select record_key, payload_hash from cdp_sync.state where sync_name = :sync_name",
                {"sync_name": sync_name},
            )
        )

    def last_run(self, sync_name: str = "test_sync") -> dict[str, Any]:
        with self.open() as wh:
            names, rows = wh.query(
                "select * from cdp_sync.runs where sync_name = :sync_name order by started_at desc limit 1",
                {"sync_name": sync_name},
            )
            return dict(zip(names, rows[0], strict=False))


def people(n: int, **overrides: Any) -> dict[str, Person]:
    return {f"p{i:03d}": Person(email=f"person{i}@example.com", **overrides) for i in range(n)}
