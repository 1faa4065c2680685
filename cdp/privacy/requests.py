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
from typing import Any

from cdp.manual_segments.tables import TableSpec, table_specs
from cdp.privacy.identifiers import Identifier
from cdp.privacy.tombstones import tombstone
from cdp.settings import DBT_PROJECT_DIR

SOURCE_NAME = "privacy_requests"
SOURCES_FILE = DBT_PROJECT_DIR / "models" / "privacy" / "_privacy_requests__sources.yml"

#: the source file's types as Spark spells them (it has no ``varchar`` without a length)
_SPARK_TYPES = {"varchar": "string"}


@dataclass(frozen=True)
class ForgetRequest:
    request_id: str
    identifier_type: str
    tombstone: str
    requested_at: datetime
    requested_by: str
    already_requested: bool = False


def create_sql(spec: TableSpec, dialect: str) -> str:
    """The table's DDL on ``dialect``: the source file's on DuckDB and Postgres; on Spark a parquet
    table (no primary key there: :func:`record_request` keeps requests unique itself)."""
    if dialect != "spark":
        return spec.create_sql()
    columns = ", ".join(f"{name} {_SPARK_TYPES.get(data_type, data_type)}" for name, data_type in spec.columns)
    return f"create table if not exists {spec.schema}.{spec.name} ({columns}) using parquet"


def ensure_table(store: Any) -> str:
    """Create schema and table if missing; return the table's qualified name. ``store`` is a
    destinations.warehouse Warehouse (DuckDB, Postgres or Spark) or a DuckDB connection."""
    from destinations.warehouse import as_warehouse

    warehouse = as_warehouse(store)
    (spec,) = table_specs(SOURCES_FILE, SOURCE_NAME)
    warehouse.execute(f"create schema if not exists {spec.schema}")
    warehouse.execute(create_sql(spec, warehouse.dialect))
    return f"{spec.schema}.{spec.name}"


def record_request(store: Any, identifier: Identifier, *, requested_by: str) -> ForgetRequest:
    """Store a request for ``identifier`` (its tombstone only) in the warehouse ``store`` (a
    Warehouse of any engine, or a DuckDB connection). Asking twice returns the first request."""
    from contextlib import nullcontext

    from destinations.warehouse import as_warehouse

    warehouse = as_warehouse(store)
    table = ensure_table(warehouse)
    digest = tombstone(identifier)
    with warehouse.transaction() if warehouse.transactional else nullcontext():
        existing = warehouse.fetch(
            f"select request_id, requested_at, requested_by from {table} "
            "where identifier_type = :identifier_type and tombstone = :tombstone",
            {"identifier_type": identifier.identifier_type, "tombstone": digest},
        )
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
        warehouse.execute(
            f"insert into {table} (request_id, identifier_type, tombstone, requested_at, requested_by) "
            "values (:request_id, :identifier_type, :tombstone, :requested_at, :requested_by)",
            {
                "request_id": request.request_id,
                "identifier_type": request.identifier_type,
                "tombstone": request.tombstone,
                "requested_at": request.requested_at,
                "requested_by": requested_by,
            },
        )
    return request
