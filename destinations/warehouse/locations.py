"""Where a sync reads its data and where it keeps its state, chosen by settings.

The desired rows are computed where the data lives (the build's engine: CDP_TARGET); the sync
state needs transactions, so it stays in the warehouse itself when that has them (DuckDB,
Postgres) and otherwise in a state store: CDP_SYNC_STATE (``duckdb:///path/file.duckdb`` or
``postgresql://user:password@host:port/dbname``), by default a DuckDB file beside the
warehouse file (``sync_state.duckdb``). A location opens a fresh :class:`Warehouse` per run.
"""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from cdp.settings import SYNC_STATE_ENV_VAR, target_name, warehouse_path
from cdp.warehouse import connect
from destinations.warehouse.base import Warehouse, WarehouseError

if TYPE_CHECKING:
    import duckdb

#: the DuckDB state store of a warehouse without transactions, beside the warehouse file
DEFAULT_STATE_FILE = "sync_state.duckdb"


class Location(ABC):
    """Something a sync run opens: a warehouse to read, or a state store to write."""

    engine: str
    #: whether the engine has transactions (a state store must)
    transactional: bool = True

    @abstractmethod
    def open(self) -> Warehouse:
        """A fresh connection, closed by the caller."""

    @abstractmethod
    def lock_dir(self) -> Path:
        """Where the per-sync run locks of this state store live (one run per sync at a time)."""

    @abstractmethod
    def describe(self) -> str:
        """For messages: which engine and where (never a password)."""

    def exists(self) -> bool:
        """False only where nothing was ever written (a DuckDB file not yet made)."""
        return True

    def waiting(self, seconds: float) -> Location:
        """The same place, opened by a writer that waits ``seconds`` for another one (DuckDB's file lock)."""
        return self

    def read_only(self) -> Location:
        """The same place, opened only to read (a DuckDB file then admits another process's writer)."""
        return self


@dataclass(frozen=True)
class DuckDBFile(Location):
    """A DuckDB file; ``opener`` opens it (cdp.warehouse.connect: a busy file raises WarehouseBusyError)."""

    path: Path
    opener: Callable[[Path], duckdb.DuckDBPyConnection] = field(default=connect, compare=False)
    engine = "duckdb"

    def open(self) -> Warehouse:
        from destinations.warehouse.duckdb_engine import DuckDBWarehouse

        warehouse = DuckDBWarehouse(self.opener(self.path))
        try:
            # a sync's plan spills to disk beyond the memory limit instead of taking the machine's
            # RAM, and its commits checkpoint less often (duckdb_engine.sync_settings)
            return warehouse.apply_sync_settings()
        except BaseException:
            warehouse.close()
            raise

    def lock_dir(self) -> Path:
        return self.path.parent / f".{self.path.name}.locks"

    def describe(self) -> str:
        return f"DuckDB file {self.path}"

    def exists(self) -> bool:
        return self.path.exists()

    def waiting(self, seconds: float) -> Location:
        return replace(self, opener=partial(connect, wait_seconds=seconds))

    def read_only(self) -> Location:
        return replace(self, opener=partial(connect, read_only=True))


@dataclass(frozen=True)
class PostgresDatabase(Location):
    """A Postgres database, from profiles.yml-style settings (host, port, user, password, dbname)."""

    settings: Mapping[str, Any]
    engine = "postgres"

    def open(self) -> Warehouse:
        from destinations.warehouse.postgres_engine import PostgresWarehouse

        return PostgresWarehouse.connect(self.settings)

    def lock_dir(self) -> Path:
        where = f"{self.settings.get('host')}_{self.settings.get('port', 5432)}_{self._dbname()}"
        return Path(tempfile.gettempdir()) / "cdp-sync-locks" / f"postgres_{where}".replace("/", "_")

    def describe(self) -> str:
        return f"Postgres database {self._dbname()} at {self.settings.get('host')}:{self.settings.get('port', 5432)}"

    def _dbname(self) -> str:
        return str(self.settings.get("dbname") or self.settings.get("database"))


@dataclass(frozen=True)
class SparkCatalog(Location):
    """Spark's tables, from a profiles.yml spark output (session method, or ``connect_url``)."""

    settings: Mapping[str, Any]
    engine = "spark"
    transactional = False

    def open(self) -> Warehouse:
        from destinations.warehouse.spark_engine import SparkWarehouse, spark_session

        return SparkWarehouse(spark_session(self.settings))

    def lock_dir(self) -> Path:
        raise WarehouseError("Spark keeps no sync state: its runs lock in their state store")

    def describe(self) -> str:
        return f"Spark ({self.settings.get('connect_url') or self.settings.get('method', 'session')})"


def location_of_target(engine: str, settings: Mapping[str, Any], warehouse: Path | None = None) -> Location:
    """The location of a dbt target (an output of profiles.yml: its adapter type and settings)."""
    if engine == "duckdb":
        return DuckDBFile(Path(warehouse or settings.get("path") or warehouse_path()).resolve())
    if engine == "postgres":
        return PostgresDatabase(dict(settings))
    if engine == "spark":
        return SparkCatalog(dict(settings))
    raise WarehouseError(f"syncs run on duckdb, postgres or spark warehouses, not {engine!r}")


def parse_state_url(url: str) -> Location:
    """CDP_SYNC_STATE: ``duckdb:///abs/path.duckdb`` or ``postgresql://user:password@host:port/dbname``."""
    parsed = urlparse(url)
    if parsed.scheme == "duckdb":
        path = unquote(parsed.netloc + parsed.path)
        if not path:
            raise WarehouseError(f"{SYNC_STATE_ENV_VAR}: no file in {url!r} (duckdb:///path/to/state.duckdb)")
        return DuckDBFile(Path(path).expanduser().resolve())
    if parsed.scheme in {"postgres", "postgresql"}:
        if not parsed.hostname or not parsed.path.strip("/"):
            raise WarehouseError(
                f"{SYNC_STATE_ENV_VAR}: postgresql://user:password@host:port/dbname, with host and dbname"
            )
        return PostgresDatabase(
            {
                "host": parsed.hostname,
                "port": parsed.port or 5432,
                "user": unquote(parsed.username or ""),
                "password": unquote(parsed.password or ""),
                "dbname": parsed.path.strip("/"),
            }
        )
    raise WarehouseError(
        f"{SYNC_STATE_ENV_VAR}: unknown state store {parsed.scheme or url!r}; "
        "use duckdb:///path/to/state.duckdb or postgresql://user:password@host:port/dbname"
    )


def state_store_for(data: Location, configured: str | None = None) -> Location:
    """The state store of a sync reading ``data``: CDP_SYNC_STATE if set, else the warehouse itself
    when it has transactions, else the DuckDB file beside the warehouse file."""
    url = configured if configured is not None else os.environ.get(SYNC_STATE_ENV_VAR, "").strip()
    if url:
        store = parse_state_url(url)
    elif data.transactional:
        return data
    else:
        store = DuckDBFile(warehouse_path().parent / DEFAULT_STATE_FILE)
    if not store.transactional:
        raise WarehouseError(f"{SYNC_STATE_ENV_VAR}: the sync state needs transactions, {store.describe()} has none")
    return store


def sync_locations(warehouse: Path | None = None) -> tuple[Location, Location]:
    """(data, state store) for the current target (CDP_TARGET) and CDP_SYNC_STATE.

    ``warehouse`` is the DuckDB file of the duckdb target (the CLI's --warehouse); other targets
    take their connection from profiles.yml through cdp.targets."""
    name = target_name()
    if name == "duckdb":
        data: Location = DuckDBFile(Path(warehouse or warehouse_path()).resolve())
    else:
        from cdp.targets import load_target  # the dbt targets (profiles.yml), read as dbt reads them

        target = load_target(name)
        data = location_of_target(target.engine, target.settings, warehouse)
    return data, state_store_for(data)
