"""Opening the DuckDB warehouse.

DuckDB allows one writer process at a time; open read-only wherever you only read.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from cdp.settings import warehouse_path


class WarehouseBusyError(RuntimeError):
    """Another process holds the DuckDB file's write lock."""


def connect(path: Path | str | None = None, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse. A file another process is writing raises WarehouseBusyError."""
    target = Path(path) if path is not None else warehouse_path()
    if not read_only:
        target.parent.mkdir(parents=True, exist_ok=True)
    try:
        return duckdb.connect(str(target), read_only=read_only)
    except duckdb.IOException as error:
        if "lock" in str(error).lower():
            raise WarehouseBusyError(
                f"The warehouse {target} is busy: another process (a dbt build, a Dagster run, another "
                "cdp command) is writing to it. DuckDB allows one writer at a time; nothing was changed — "
                "retry when it has finished."
            ) from None
        raise


def table_row_counts(con: duckdb.DuckDBPyConnection, schemas: list[str] | None = None) -> list[tuple[str, str, int]]:
    """(schema, table, rows) for every base table and view, optionally limited to ``schemas``."""
    rows = con.execute(
        """
        select table_schema, table_name
        from information_schema.tables
        where table_schema not in ('information_schema', 'pg_catalog')
        order by table_schema, table_name
        """
    ).fetchall()
    out: list[tuple[str, str, int]] = []
    for schema, table in rows:
        if schemas is not None and schema not in schemas:
            continue
        (count,) = con.execute(f'select count(*) from "{schema}"."{table}"').fetchall()[0]
        out.append((schema, table, int(count)))
    return out
