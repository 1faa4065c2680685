"""`cdp forget` requests: one row each in ``privacy.forget_requests``, which dbt reads beside
raw.deletion_requests (model int_privacy__requests).

The table is the project's, not the user's loaders' (raw is theirs). It stores what the build
needs and nothing more: the identifier's type and its tombstone (cdp/privacy/tombstones.py), so
the identifier is never written anywhere — not even until the next build. Its columns are
declared once, in dbt_project/models/privacy/_privacy_requests__sources.yml.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from cdp.manual_segments.tables import quote, table_specs, transaction
from cdp.privacy.identifiers import Identifier
from cdp.privacy.tombstones import tombstone
from cdp.settings import DBT_PROJECT_DIR

SOURCE_NAME = "privacy_requests"
SOURCES_FILE = DBT_PROJECT_DIR / "models" / "privacy" / "_privacy_requests__sources.yml"


@dataclass(frozen=True)
class ForgetRequest:
    request_id: str
    identifier_type: str
    tombstone: str
    requested_at: datetime
    requested_by: str
    already_requested: bool = False


def ensure_table(con: duckdb.DuckDBPyConnection) -> str:
    """Create schema and table if missing; return the table's qualified name."""
    (spec,) = table_specs(SOURCES_FILE, SOURCE_NAME)
    con.execute(f"create schema if not exists {quote(spec.schema)}")
    con.execute(spec.create_sql())
    return f"{quote(spec.schema)}.{quote(spec.name)}"


def record_request(con: duckdb.DuckDBPyConnection, identifier: Identifier, *, requested_by: str) -> ForgetRequest:
    """Store a request for ``identifier`` (its tombstone only). Asking twice returns the first request."""
    with transaction(con):
        table = ensure_table(con)
        digest = tombstone(identifier)
        existing = con.execute(
            f"select request_id, requested_at, requested_by from {table} where identifier_type = ? and tombstone = ?",
            [identifier.identifier_type, digest],
        ).fetchall()
        if existing:
            request_id, requested_at, by = existing[0]
            return ForgetRequest(
                request_id, identifier.identifier_type, digest, requested_at, by, already_requested=True
            )
        request = ForgetRequest(
            request_id=f"cli-{uuid.uuid4()}",
            identifier_type=identifier.identifier_type,
            tombstone=digest,
            requested_at=datetime.now(UTC).replace(tzinfo=None),
            requested_by=requested_by,
        )
        con.execute(
            f"insert into {table} (request_id, identifier_type, tombstone, requested_at, requested_by) "
            "values (?, ?, ?, ?, ?)",
            [request.request_id, request.identifier_type, request.tombstone, request.requested_at, requested_by],
        )
    return request


def open_for_requests(path: Path) -> duckdb.DuckDBPyConnection:
    from cdp import warehouse

    if not path.exists():
        raise FileNotFoundError(f"No warehouse at {path}. Run `cdp generate` (or load raw) and `cdp build` first.")
    return warehouse.connect(path, read_only=False)
