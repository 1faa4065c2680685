"""Hand-written raw data for scenario tests: empty contract tables plus the rows a test names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cdp.contract import RAW_TABLES, create_raw_tables_sql
from cdp.warehouse import connect


def write_raw(path: Path, rows: dict[str, list[dict[str, Any]]], *, replace: bool = True) -> None:
    """Create every raw contract table in ``path`` and insert ``rows`` (missing columns are NULL)."""
    unknown = set(rows) - set(RAW_TABLES)
    if unknown:
        raise ValueError(f"not contract tables: {sorted(unknown)}")
    with connect(path) as con:
        if replace:
            for statement in create_raw_tables_sql():
                con.execute(statement)
        for table, records in rows.items():
            columns = [name for name, _ in RAW_TABLES[table]]
            for record in records:
                extra = set(record) - set(columns)
                if extra:
                    raise ValueError(f"{table}: unknown columns {sorted(extra)}")
                placeholders = ", ".join("?" for _ in columns)
                con.execute(
                    f"insert into raw.{table} ({', '.join(columns)}) values ({placeholders})",
                    [record.get(column) for column in columns],
                )
