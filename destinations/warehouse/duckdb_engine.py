"""The DuckDB warehouse: the default engine, and a state store for engines without transactions."""

from __future__ import annotations

import os
from typing import Any

import duckdb
import pyarrow as pa

from destinations.warehouse.base import MissingTableError, Params, Warehouse, WarehouseError, translate_binds, used

#: DuckDB's memory limit on the connections a sync opens (env CDP_SYNC_DUCKDB_MEMORY_LIMIT overrides it).
#: DuckDB's own default is 80% of RAM: a 10M-row plan then took 5.3 GB. With a limit it spills to
#: its temp directory instead; 1 GB keeps a whole sync process near 2 GB on a 24 GB, 2-core machine
#: shared with builds, and costs a plan of a million rows nothing (it fits).
SYNC_MEMORY_LIMIT = "1GB"

#: The write-ahead log's size at which a sync's commit checkpoints (env
#: CDP_SYNC_DUCKDB_CHECKPOINT_THRESHOLD overrides it; DuckDB's own default is 16 MB). A sync logs
#: about 450 bytes a record (change log, departed keys, in-flight marks) and its plan table: at
#: 16 MB a 100k-record run checkpointed twice inside the send loop, ~0.3 s each in the background
#: commit, and the sender waited for it. At 64 MB such a run checkpoints once, when it closes;
#: a 10M-record run every ~15 windows. Committed data not yet checkpointed is held in memory, so
#: this stays small beside SYNC_MEMORY_LIMIT. DuckDB applies it to the whole file's instance.
SYNC_CHECKPOINT_THRESHOLD = "64MB"


def sync_settings() -> dict[str, str]:
    """The DuckDB settings a sync's connections get, each from its CDP_SYNC_DUCKDB_<NAME> variable:
    ``memory_limit`` (default SYNC_MEMORY_LIMIT), ``checkpoint_threshold`` (default
    SYNC_CHECKPOINT_THRESHOLD) — empty for DuckDB's own default — and, when
    CDP_SYNC_DUCKDB_TEMP_DIRECTORY is set, the ``temp_directory`` it spills to (default: DuckDB's,
    ``<file>.tmp`` beside the file)."""
    defaults = {
        "memory_limit": SYNC_MEMORY_LIMIT,
        "checkpoint_threshold": SYNC_CHECKPOINT_THRESHOLD,
        "temp_directory": "",
    }
    settings = {}
    for name, default in defaults.items():
        value = os.environ.get(_variable(name), default).strip()
        if value:
            settings[name] = value
    return settings


def _variable(setting: str) -> str:
    return "CDP_SYNC_DUCKDB_" + setting.upper()


class DuckDBWarehouse(Warehouse):
    """A DuckDB connection (cdp.warehouse.connect opens it: its lock errors stay WarehouseBusyError)."""

    dialect = "duckdb"
    transactional = True

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def apply_sync_settings(self) -> DuckDBWarehouse:
        """Apply sync_settings() to this connection (a bad value is an error naming its variable)."""
        for name, value in sync_settings().items():
            try:
                self.con.execute(f"set {name} = $value", {"value": value})
            except duckdb.Error as error:
                raise WarehouseError(f"{_variable(name)}={value!r} is not a valid DuckDB {name}: {error}") from error
        return self

    def _run(self, sql: str, params: Params | None) -> Any:
        values = used(sql, params)
        try:
            if values:
                return self.con.execute(translate_binds(sql, "dollar"), values)
            return self.con.execute(sql)
        except duckdb.CatalogException as error:
            if "does not exist" in str(error):
                raise MissingTableError(str(error).splitlines()[0]) from error
            raise

    def execute(self, sql: str, params: Params | None = None) -> None:
        self._run(sql, params)

    def query(self, sql: str, params: Params | None = None) -> tuple[list[str], list[tuple]]:
        cursor = self._run(sql, params)
        return [column[0] for column in cursor.description], cursor.fetchall()

    def fetch(self, sql: str, params: Params | None = None) -> list[tuple]:
        return self._run(sql, params).fetchall()

    def fetch_arrow(self, sql: str, params: Params | None = None) -> pa.Table:
        values = used(sql, params)
        relation = self.con.sql(translate_binds(sql, "dollar"), params=values) if values else self.con.sql(sql)
        return relation.to_arrow_table()

    def has_table(self, schema: str, table: str) -> bool:
        (found,) = self.con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()[0]
        return found > 0

    def create_table_as(self, name: str, sql: str, params: Params | None = None, *, temporary: bool = False) -> None:
        self.execute(f"create or replace {'temp ' if temporary else ''}table {name} as\n{sql}", params)

    def load_rows(self, name: str, rows: pa.Table, *, temporary: bool = True) -> None:
        """A temporary relation is the Arrow table itself, registered (no copy); a lasting one is copied in."""
        if temporary:
            self.con.register(name, rows)
            return
        self.con.register("_cdp_loaded_rows", rows)
        try:
            self.con.execute(f"create or replace table {name} as select * from _cdp_loaded_rows")
        finally:
            self.con.unregister("_cdp_loaded_rows")

    def drop_loaded(self, name: str) -> None:
        self.con.unregister(name)

    def _begin(self) -> None:
        self.con.begin()

    def _commit(self) -> None:
        self.con.commit()

    def _rollback(self) -> None:
        self.con.rollback()

    def execute_many(self, sql: str, rows) -> None:
        rows = list(rows)
        if rows:
            self.con.executemany(translate_binds(sql, "dollar"), [used(sql, row) for row in rows])

    def close(self) -> None:
        self.con.close()
