"""What the sync engine needs from a warehouse, whatever the engine: the interface and its errors.

Our SQL binds values by name in one style, ``:name``; each implementation translates it for
its driver (DuckDB ``$name``, psycopg2 ``%(name)s``, Spark's own ``:name``) and binds only the
names a statement uses (DuckDB refuses extras; a template may leave some out). A ``::`` cast is
not a bind. Everything the engine knows about a dialect beyond that lives in the Jinja macros of
``destinations/sql/_dialect.sql``, which every template imports with ``dialect`` in its context.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import pyarrow as pa

Params = Mapping[str, Any]

#: a string literal, a comment, or a ``:name`` bind (not a ``::`` cast; a name starts with a letter
#: or an underscore): literals and comments are matched only to be left alone
_NAMED_BIND = re.compile(r"'(?:[^']|'')*'|--[^\n]*|(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)")


class WarehouseError(RuntimeError):
    """The warehouse cannot do what was asked; the message says which engine and why."""


class MissingTableError(WarehouseError):
    """A table or view the statement reads does not exist (one type on every engine)."""


@lru_cache(maxsize=512)
def bind_names(sql: str) -> frozenset[str]:
    """The ``:name`` binds a statement uses (outside literals and comments)."""
    return frozenset(name for name in _NAMED_BIND.findall(sql) if name)


@lru_cache(maxsize=512)
def translate_binds(sql: str, style: str) -> str:
    """``sql`` with its ``:name`` binds in a driver's style: ``dollar`` ($name) or ``pyformat``
    (%(name)s, every literal ``%`` doubled as psycopg2 then requires)."""
    if style == "dollar":
        return _NAMED_BIND.sub(lambda match: f"${match[1]}" if match[1] else match[0], sql)
    if style == "pyformat":
        return _NAMED_BIND.sub(lambda match: f"%({match[1]})s" if match[1] else match[0], sql.replace("%", "%%"))
    raise ValueError(f"unknown bind style {style!r}")


def used(sql: str, params: Params | None) -> dict[str, Any]:
    """The values of the binds ``sql`` uses; a bind without a value is an error that names it."""
    names = bind_names(sql)
    values = dict(params or {})
    missing = sorted(names - values.keys())
    if missing:
        raise WarehouseError(f"no value for bind parameter(s) {', '.join(':' + name for name in missing)}")
    return {name: values[name] for name in names}


class Warehouse(ABC):
    """One open connection to an engine: the sync engine's only way to run SQL.

    ``dialect`` names the engine for the SQL macros (duckdb, postgres, spark);
    ``transactional`` says whether :meth:`transaction` exists (the sync state needs it).
    """

    dialect: str
    transactional: bool = True

    @abstractmethod
    def execute(self, sql: str, params: Params | None = None) -> None:
        """Run one statement (DDL may hold several when it binds nothing)."""

    @abstractmethod
    def query(self, sql: str, params: Params | None = None) -> tuple[list[str], list[tuple]]:
        """Column names (lower case as the engine reports them) and every row."""

    def fetch(self, sql: str, params: Params | None = None) -> list[tuple]:
        """Every row of a query."""
        return self.query(sql, params)[1]

    def fetch_arrow(self, sql: str, params: Params | None = None) -> pa.Table:
        """A query's rows as an Arrow table (how rows move from one engine to another)."""
        names, rows = self.query(sql, params)
        return (
            pa.Table.from_pylist([dict(zip(names, row, strict=True)) for row in rows])
            if rows
            else pa.table({name: pa.array([], pa.string()) for name in names})
        )

    def columns(self, relation: str) -> list[str]:
        """The column names of a table or view, lower case; MissingTableError if there is none."""
        names, _ = self.query(f"select * from {relation} limit 0")
        return [name.lower() for name in names]

    @abstractmethod
    def has_table(self, schema: str, table: str) -> bool:
        """Whether ``schema.table`` exists."""

    @abstractmethod
    def create_table_as(self, name: str, sql: str, params: Params | None = None, *, temporary: bool = False) -> None:
        """Create ``name`` (or replace it) holding the rows of the query ``sql``."""

    @abstractmethod
    def load_rows(self, name: str, rows: pa.Table, *, temporary: bool = True) -> None:
        """Create ``name`` (or replace it) holding ``rows``, in bulk (the engine's fastest path)."""

    def drop_loaded(self, name: str) -> None:
        """Forget a relation :meth:`load_rows` made."""
        self.execute(f"drop table if exists {name}")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together or not at all."""
        if not self.transactional:
            raise WarehouseError(
                f"{self.dialect} has no transactions: keep the sync state in a DuckDB or Postgres state store "
                "(CDP_SYNC_STATE)"
            )
        self._begin()
        try:
            yield
            self._commit()
        except BaseException:
            self._rollback()
            raise

    def _begin(self) -> None:
        self.execute("begin")

    def _commit(self) -> None:
        self.execute("commit")

    def _rollback(self) -> None:
        self.execute("rollback")

    def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        """The same statement once per set of values (a handful of rows; bulk loads use load_rows)."""
        for params in rows:
            self.execute(sql, params)

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
