"""Where the lists live: schema ``manual_segments``, its tables, and how to open them.

``definitions``  one row per segment (name, description, owner, created/updated at)
``members``      one row per (segment, profile id) as added
``audit_log``    append-only: who changed what, when (one ``change_id`` per command)

Their columns and types are declared once, in the dbt source file
``dbt_project/models/segments/manual/_manual_segments__sources.yml``: this module creates
the tables from it (idempotent), and the dbt models read an empty relation of that shape
when the tables do not exist yet (macro ``manual_segments_relation``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml

from cdp import warehouse
from cdp.manual_segments.errors import ManualSegmentError
from cdp.settings import DBT_PROJECT_DIR

SCHEMA = "manual_segments"
SOURCES_FILE = DBT_PROJECT_DIR / "models" / "segments" / "manual" / "_manual_segments__sources.yml"


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[tuple[str, str], ...]
    primary_key: tuple[str, ...]
    schema: str = SCHEMA

    def create_sql(self) -> str:
        lines = [f"    {quote(name)} {data_type}" for name, data_type in self.columns]
        if self.primary_key:
            lines.append(f"    primary key ({', '.join(quote(c) for c in self.primary_key)})")
        return f"create table if not exists {quote(self.schema)}.{quote(self.name)} (\n" + ",\n".join(lines) + "\n)"


def table_specs(sources_file: Path = SOURCES_FILE, source_name: str = SCHEMA) -> list[TableSpec]:
    """The tables of dbt source ``source_name`` as its source file declares them (the one definition).

    Also used for the other table the CLI owns, privacy.forget_requests (cdp/privacy/requests.py).
    """
    document = yaml.safe_load(sources_file.read_text())
    for source in document.get("sources", []):
        if source.get("name") != source_name:
            continue
        specs = []
        for table in source["tables"]:
            meta = (table.get("config") or {}).get("meta") or table.get("meta") or {}
            specs.append(
                TableSpec(
                    name=table["name"],
                    columns=tuple((column["name"], column["data_type"]) for column in table["columns"]),
                    primary_key=tuple(meta.get("primary_key", ())),
                    schema=source.get("schema", source_name),
                )
            )
        return specs
    raise ManualSegmentError(f"{sources_file} declares no source named {source_name!r}.")


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the schema and tables if missing and add columns declared since (idempotent)."""
    con.execute(f"create schema if not exists {quote(SCHEMA)}")
    for spec in table_specs():
        con.execute(spec.create_sql())
        for name, data_type in spec.columns:
            if name not in spec.primary_key:
                con.execute(
                    f"alter table {quote(SCHEMA)}.{quote(spec.name)} add column if not exists {quote(name)} {data_type}"
                )


def tables_exist(con: duckdb.DuckDBPyConnection) -> bool:
    return relation_exists(con, SCHEMA, "definitions")


def relation_exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    rows = con.execute(
        "select 1 from information_schema.tables "
        "where table_schema = ? and table_name = ? and table_catalog = current_database()",
        [schema, name],
    ).fetchall()
    return bool(rows)


@contextmanager
def open_warehouse(path: Path, *, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse; a write connection gets the tables.

    A file another process is writing raises :class:`cdp.warehouse.WarehouseBusyError`.
    """
    if not path.exists():
        raise ManualSegmentError(f"No warehouse at {path}. Run `cdp generate` and `cdp build` first.")
    con = warehouse.connect(path, read_only=read_only)
    try:
        if not read_only:
            with transaction(con):
                ensure_tables(con)
        yield con
    finally:
        con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All or nothing: commit when the block finishes, roll back if it raises."""
    con.begin()
    try:
        yield
    except BaseException:
        con.rollback()
        raise
    con.commit()


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
