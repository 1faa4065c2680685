"""Opening the DuckDB warehouse.

DuckDB allows one writer process at a time; open read-only wherever you only read.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb

from cdp.settings import warehouse_path


class WarehouseBusyError(RuntimeError):
    """Another process holds the DuckDB file's write lock."""


#: how often a waiting writer tries the file lock again
_RETRY_SECONDS = 0.2


def connect(
    path: Path | str | None = None, *, read_only: bool = False, wait_seconds: float = 0.0
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse. A file another process is writing raises WarehouseBusyError.

    ``wait_seconds`` tries the lock again for that long first: a sensor's read-only glance
    holds the file for milliseconds, and a writer that arrives in that moment should wait,
    not fail. A long build still ends in WarehouseBusyError once the wait is over.
    """
    target = Path(path) if path is not None else warehouse_path()
    if not read_only:
        target.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return duckdb.connect(str(target), read_only=read_only)
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise
            if time.monotonic() >= deadline:
                raise WarehouseBusyError(
                    f"The warehouse {target} is busy: another process (a dbt build, a Dagster run, another "
                    "cdp command) is writing to it. DuckDB allows one writer at a time; nothing was changed — "
                    "retry when it has finished."
                ) from None
        time.sleep(_RETRY_SECONDS)


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
