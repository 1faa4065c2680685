"""The warehouse interface the sync engine runs on: DuckDB, Postgres and Spark behind one API.

- :mod:`destinations.warehouse.base`: :class:`Warehouse` (execute with ``:name`` binds, query,
  fetch, columns, load rows, transaction, dialect) and its errors;
- one module per engine (``duckdb_engine``, ``postgres_engine``, ``spark_engine``), imported only
  when that engine is used, so DuckDB needs neither psycopg2 nor pyspark;
- :mod:`destinations.warehouse.locations`: where a sync's data and state live (CDP_TARGET,
  CDP_SYNC_STATE).
"""

from __future__ import annotations

from typing import Any

from destinations.warehouse.base import MissingTableError, Warehouse, WarehouseError


def as_warehouse(con: Any) -> Warehouse:
    """``con`` if it is a Warehouse; a DuckDB connection wrapped as one (callers that open the
    DuckDB file themselves — the CLI, alerts, the demo — hand those to destinations.state)."""
    if isinstance(con, Warehouse):
        return con
    from destinations.warehouse.duckdb_engine import DuckDBWarehouse

    return DuckDBWarehouse(con)


__all__ = ["MissingTableError", "Warehouse", "WarehouseError", "as_warehouse"]
