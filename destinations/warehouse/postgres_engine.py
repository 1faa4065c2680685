"""The Postgres warehouse (psycopg2, the `postgres` extra): a build engine and a state store.

The connection runs in autocommit; :meth:`Warehouse.transaction` issues ``begin``/``commit``
itself, so a batch's statements commit together as on DuckDB. Rows arrive in bulk through
``COPY … FROM STDIN``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import pyarrow as pa

from destinations.warehouse.base import MissingTableError, Params, Warehouse, WarehouseError, translate_binds, used

#: the settings of a profiles.yml postgres output that psycopg2 takes
CONNECTION_SETTINGS = ("host", "port", "user", "password", "dbname")


def connect_postgres(settings: Mapping[str, Any]):
    """A psycopg2 connection from a profiles.yml-style postgres output (host, port, user, password,
    dbname): cdp.engine_tables opens it, as for dbt's target."""
    from cdp.engine_tables import EngineError, postgres_connection
    from cdp.targets import Target

    try:
        return postgres_connection(Target(name="postgres", engine="postgres", settings=dict(settings)))
    except EngineError as error:
        raise WarehouseError(str(error)) from error


def _column_type(data_type: pa.DataType) -> str:
    """The Postgres type a loaded Arrow column gets."""
    if pa.types.is_boolean(data_type):
        return "boolean"
    if pa.types.is_integer(data_type):
        return "bigint"
    if pa.types.is_floating(data_type):
        return "double precision"
    if pa.types.is_decimal(data_type):
        return f"numeric({data_type.precision}, {data_type.scale})"
    if pa.types.is_timestamp(data_type):
        return "timestamp" if data_type.tz is None else "timestamptz"
    if pa.types.is_date(data_type):
        return "date"
    return "text"


def _copy_value(value: Any) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


class PostgresWarehouse(Warehouse):
    dialect = "postgres"
    transactional = True

    def __init__(self, con):
        import psycopg2.errors

        self.con = con
        self.con.autocommit = True
        self._undefined = (psycopg2.errors.UndefinedTable, psycopg2.errors.InvalidSchemaName)

    @classmethod
    def connect(cls, settings: Mapping[str, Any]) -> PostgresWarehouse:
        return cls(connect_postgres(settings))

    def _run(self, cursor, sql: str, params: Params | None) -> None:
        values = used(sql, params)
        try:
            if values:
                cursor.execute(translate_binds(sql, "pyformat"), values)
            else:
                cursor.execute(sql)
        except self._undefined as error:
            raise MissingTableError(str(error).strip().splitlines()[0]) from error

    def execute(self, sql: str, params: Params | None = None) -> None:
        with self.con.cursor() as cursor:
            self._run(cursor, sql, params)

    def query(self, sql: str, params: Params | None = None) -> tuple[list[str], list[tuple]]:
        with self.con.cursor() as cursor:
            self._run(cursor, sql, params)
            return [column.name for column in cursor.description], cursor.fetchall()

    def has_table(self, schema: str, table: str) -> bool:
        (found,) = self.fetch(
            "select count(*) from information_schema.tables where table_schema = :schema and table_name = :table",
            {"schema": schema, "table": table},
        )[0]
        return found > 0

    def create_table_as(self, name: str, sql: str, params: Params | None = None, *, temporary: bool = False) -> None:
        self.execute(f"drop table if exists {name}")
        self.execute(f"create {'temp ' if temporary else ''}table {name} as\n{sql}", params)

    def load_rows(self, name: str, rows: pa.Table, *, temporary: bool = True) -> None:
        columns = ", ".join(f'"{field.name}" {_column_type(field.type)}' for field in rows.schema)
        self.execute(f"drop table if exists {name}")
        self.execute(f"create {'temp ' if temporary else ''}table {name} ({columns})")
        buffer = io.StringIO()
        for row in zip(*(column.to_pylist() for column in rows.columns), strict=True):
            buffer.write("\t".join(_copy_value(value) for value in row) + "\n")
        buffer.seek(0)
        with self.con.cursor() as cursor:
            cursor.copy_expert(f"copy {name} from stdin", buffer)

    def close(self) -> None:
        self.con.close()
