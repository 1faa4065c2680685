"""How far each raw table has got: its row count and its newest timestamp.

The raw-data sensor (orchestration/automation.py) keeps these "watermarks" as its cursor and
asks for a build of what depends on a table whose watermark moved. Which column is a table's
timestamp is said once, in the dbt sources (``config.loaded_at_field`` in
``dbt_project/models/staging/*/_<source>__sources.yml``, dbt's own field for "when did this row
arrive"); a table without one (``shop_order_items``) is watched by its row count alone.

Reading is one short query on a read-only connection: DuckDB lets no writer in while any
process holds the file, so the sensor must never linger (see cdp.warehouse).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdp.settings import RAW_SCHEMA

#: table name -> {"rows": n, "newest": ISO timestamp or None}
Watermarks = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class RawTable:
    """One table of schema raw as the dbt sources declare it."""

    #: the dbt source it belongs to (crm, shop, …): dbt selects it as ``source:<source>.<name>``
    source: str
    name: str
    #: its ``loaded_at_field``, or None (watched by row count only)
    timestamp_column: str | None
    #: the dbt unique id (``source.cdp.crm.crm_contacts``)
    unique_id: str

    @property
    def dbt_selector(self) -> str:
        return f"source:{self.source}.{self.name}"


def raw_tables(manifest: Mapping[str, Any]) -> dict[str, RawTable]:
    """Every source table of schema raw in a dbt manifest, by table name."""
    tables = {}
    for unique_id, node in sorted(manifest.get("sources", {}).items()):
        if node.get("schema") != RAW_SCHEMA:
            continue
        column = (node.get("config") or {}).get("loaded_at_field") or node.get("loaded_at_field")
        tables[node["name"]] = RawTable(node["source_name"], node["name"], column, unique_id)
    return tables


def read_watermarks(path: Path, tables: Mapping[str, RawTable]) -> Watermarks:
    """The watermark of every table that exists in the warehouse (read-only, one query).

    Raises cdp.warehouse.WarehouseBusyError while another process writes the file.
    A table missing from the warehouse is left out (it has no data to notice yet).
    """
    from cdp.warehouse import connect  # here: importing the definitions must not load DuckDB

    with connect(path, read_only=True) as con:
        # fully qualified (catalog.raw.table): a file named raw.duckdb makes a bare `raw` ambiguous
        present = dict(
            con.execute(
                "select table_name, table_catalog from information_schema.tables "
                "where table_schema = ? and table_catalog = current_database()",
                [RAW_SCHEMA],
            ).fetchall()
        )
        selects = [
            f"select '{table.name}' as table_name, count(*) as row_count, "
            + (f'cast(max("{table.timestamp_column}") as varchar)' if table.timestamp_column else "null")
            + f' as newest from "{present[name]}".{RAW_SCHEMA}."{table.name}"'
            for name, table in sorted(tables.items())
            if name in present
        ]
        if not selects:
            return {}
        rows = con.execute(" union all ".join(selects)).fetchall()
    return {name: {"rows": int(count), "newest": newest} for name, count, newest in rows}


def changed_tables(previous: Watermarks, current: Watermarks) -> list[str]:
    """Tables whose row count or newest timestamp differs, or that appeared, or that went away."""
    return sorted(name for name in set(previous) | set(current) if previous.get(name) != current.get(name))


def encode(watermarks: Watermarks) -> str:
    """The cursor: canonical JSON, so equal watermarks give equal text."""
    return json.dumps(watermarks, sort_keys=True, separators=(",", ":"))


def decode(cursor: str | None) -> Watermarks | None:
    """A cursor back into watermarks; None for no cursor (the sensor's first look)."""
    return json.loads(cursor) if cursor else None


def digest(watermarks: Watermarks) -> str:
    """A short stable id of a state of the raw tables (the sensor's run key)."""
    return hashlib.sha256(encode(watermarks).encode()).hexdigest()[:16]
