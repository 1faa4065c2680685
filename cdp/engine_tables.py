"""Moving whole tables between Python and a warehouse engine outside dbt: DuckDB, Postgres, Spark.

Two jobs need it: copying the sample's raw tables from the DuckDB file the generator writes into
another engine (`cdp load-raw`), and the predictive step, which reads features into pandas and
writes scores back on engines whose dbt adapter cannot run Python models. Connection settings
come from profiles.yml (cdp/targets.py), so this code and dbt always use the same database.

Spark here means the session method (a local JVM, as CI runs it). Its embedded Derby metastore
admits one JVM at a time, so callers run Spark work in a child process of its own, never beside a
dbt invocation.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from cdp.targets import Target
from cdp.warehouse import connect

#: DuckDB type (as information_schema spells it) -> the type Postgres / Spark give the copied column.
_TYPE_NAMES = {
    "postgres": {"VARCHAR": "text", "DOUBLE": "double precision", "FLOAT": "real"},
    "spark": {"VARCHAR": "string", "DOUBLE": "double", "FLOAT": "float"},
}
_PORTABLE_TYPES = re.compile(r"^(INTEGER|BIGINT|SMALLINT|BOOLEAN|DATE|TIMESTAMP|DECIMAL\(\d+,\d+\))$")


class EngineError(RuntimeError):
    """The engine is not one this module can reach, or a table could not be moved."""


def column_type(duckdb_type: str, engine: str) -> str:
    """The type ``engine`` gives a column DuckDB calls ``duckdb_type``."""
    upper = duckdb_type.upper().replace(" ", "")
    if engine == "duckdb":
        return duckdb_type
    if upper in _TYPE_NAMES.get(engine, {}):
        return _TYPE_NAMES[engine][upper]
    if _PORTABLE_TYPES.match(upper):
        return upper.lower()
    raise EngineError(f"No {engine} type for DuckDB type {duckdb_type!r}.")


# --- connections --------------------------------------------------------------------------


def postgres_connection(target: Target):
    """A psycopg2 connection to the target's database (settings from profiles.yml). The one opener:
    `cdp load-raw`, the predictive step and the sync engine's Postgres warehouse use it."""
    try:
        import psycopg2
    except ImportError as error:  # pragma: no cover - the extra is part of the test install
        raise EngineError('The postgres target needs `pip install -e ".[postgres]"`.') from error
    settings = target.settings
    return psycopg2.connect(
        host=settings.get("host"),
        port=int(settings.get("port", 5432)),
        user=settings.get("user"),
        password=settings.get("password") or None,
        dbname=settings.get("dbname") or settings.get("database"),
        connect_timeout=10,
    )


def spark_session(target: Target):
    """The target's SparkSession: the session method configured exactly as dbt-spark configures its own
    (local mode, its ``server_side_parameters``), or Spark Connect where the output sets ``connect_url``.

    The one builder: the predictive step, `cdp load-raw` and the sync engine's Spark warehouse use it.
    """
    settings = target.settings
    try:
        from pyspark.sql import SparkSession
    except ImportError as error:  # pragma: no cover - the extra is part of the test install
        raise EngineError('The spark target needs `pip install -e ".[spark]"`.') from error
    if settings.get("connect_url"):
        return SparkSession.builder.remote(str(settings["connect_url"])).getOrCreate()
    if settings.get("method", "session") != "session":
        raise EngineError(
            f"Target {target.name!r} reaches Spark through {settings.get('method')!r}; Python reads and writes "
            "Spark tables through the session method or Spark Connect (connect_url) only. On a cluster, run "
            "this step on the cluster (spark-submit) with a profiles.yml output of `method: session`."
        )
    builder = SparkSession.builder.enableHiveSupport()
    parameters = {str(key): str(value) for key, value in (settings.get("server_side_parameters") or {}).items()}
    parameters["spark.sql.ansi.enabled"] = "false"  # as dbt-spark forces it
    parameters.setdefault("spark.sql.session.timeZone", "UTC")
    parameters.setdefault("spark.sql.execution.arrow.pyspark.enabled", "true")
    for key, value in parameters.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


@contextmanager
def opened(target: Target, warehouse: Path | None = None, *, read_only: bool = False) -> Iterator[Any]:
    """An open connection (DuckDB, psycopg2) or SparkSession for the target; closed / stopped afterwards.

    ``warehouse`` and ``read_only`` apply to DuckDB (default: the target's file, CDP_WAREHOUSE).
    """
    if target.engine == "duckdb":
        con = connect(warehouse or Path(target.settings["path"]), read_only=read_only)
        try:
            yield con
        finally:
            con.close()
    elif target.engine == "postgres":
        con = postgres_connection(target)
        try:
            yield con
        finally:
            con.close()
    elif target.engine == "spark":
        spark = spark_session(target)
        try:
            yield spark
        finally:
            spark.stop()
    else:
        raise EngineError(
            f"Target {target.name!r} uses engine {target.engine!r}; Python reaches duckdb, postgres, spark."
        )


# --- reading and writing frames -----------------------------------------------------------


def _quoted(engine: str, *parts: str) -> str:
    quote = "`" if engine == "spark" else '"'
    return ".".join(f"{quote}{part}{quote}" for part in parts)


def read_frame(target: Target, handle: Any, schema: str, table: str) -> pd.DataFrame:
    """A whole table as a pandas frame, with the dtypes DuckDB's ``.df()`` would give the same columns."""
    if target.engine == "duckdb":
        return handle.execute(f"select * from {_quoted('duckdb', schema, table)}").df()
    if target.engine == "postgres":
        with handle.cursor() as cursor:
            cursor.execute(f"select * from {_quoted('postgres', schema, table)}")
            names = [column.name for column in cursor.description]
            frame = pd.DataFrame.from_records(cursor.fetchall(), columns=names)
    else:
        frame = handle.table(f"{schema}.{table}").toPandas()
    return _numeric_columns_as_numbers(frame)


def _numeric_columns_as_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """Decimal (and NULL-holding integer) object columns as float64, as DuckDB hands DECIMAL to pandas."""
    from decimal import Decimal

    for name in frame.columns:
        column = frame[name]
        if column.dtype != object:
            continue
        values = column.dropna()
        if len(values) and all(
            isinstance(value, Decimal | int | float) and not isinstance(value, bool) for value in values
        ):
            frame[name] = column.astype("float64")
    return frame


def _engine_type_of(dtype: Any, engine: str) -> str:
    """The column type for a pandas dtype (the kinds the predictive models return)."""
    kind = pd.api.types
    if kind.is_bool_dtype(dtype):
        return "boolean"
    if kind.is_integer_dtype(dtype):
        return "integer" if dtype.itemsize <= 4 else "bigint"
    if kind.is_float_dtype(dtype):
        return "double precision" if engine == "postgres" else "double"
    if kind.is_string_dtype(dtype) or kind.is_object_dtype(dtype):
        return "text" if engine == "postgres" else "string"
    raise EngineError(f"No {engine} column type for pandas dtype {dtype}.")


def write_frame(target: Target, handle: Any, schema: str, table: str, frame: pd.DataFrame) -> None:
    """Replace ``schema.table`` with the frame's rows (NaN and missing values become NULL)."""
    if target.engine == "duckdb":
        handle.execute(f"create schema if not exists {_quoted('duckdb', schema)}")
        handle.register("frame_to_write", frame)
        try:
            handle.execute(
                f"create or replace table {_quoted('duckdb', schema, table)} as select * from frame_to_write"
            )
        finally:
            handle.unregister("frame_to_write")
    elif target.engine == "postgres":
        _write_postgres(handle, schema, table, frame)
    else:
        _write_spark(handle, schema, table, frame)


def _write_postgres(con: Any, schema: str, table: str, frame: pd.DataFrame) -> None:
    import io

    columns = ", ".join(f'"{name}" {_engine_type_of(frame[name].dtype, "postgres")}' for name in frame.columns)
    buffer = io.StringIO()
    frame.astype(object).where(frame.notna(), None).to_csv(buffer, index=False, header=False, na_rep="")
    buffer.seek(0)
    relation = _quoted("postgres", schema, table)
    with con, con.cursor() as cursor:  # one transaction: readers see the old table or the new one
        cursor.execute(f'create schema if not exists "{schema}"')
        cursor.execute(f"drop table if exists {relation}")
        cursor.execute(f"create table {relation} ({columns})")
        cursor.copy_expert(f"copy {relation} from stdin with (format csv)", buffer)


def _write_spark(spark: Any, schema: str, table: str, frame: pd.DataFrame) -> None:
    ddl = ", ".join(f"`{name}` {_engine_type_of(frame[name].dtype, 'spark')}" for name in frame.columns)
    rows = [
        tuple(None if _is_missing(value) else _plain(value) for value in record)
        for record in frame.itertuples(index=False, name=None)
    ]
    spark.sql(f"create database if not exists `{schema}`")
    data = spark.createDataFrame(rows, schema=ddl)
    data.write.mode("overwrite").format("parquet").saveAsTable(f"`{schema}`.`{table}`")


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> Any:
    """numpy scalars as Python values (Spark's row converter wants those)."""
    return value.item() if hasattr(value, "item") else value


# --- raw tables: from the generator's DuckDB file into another engine ----------------------


def duckdb_tables(warehouse: Path, schema: str) -> dict[str, list[tuple[str, str]]]:
    """Tables of ``schema`` in a DuckDB file: name -> [(column, DuckDB type)] in column order."""
    with connect(warehouse, read_only=True) as con:
        rows = con.execute(
            """
            select table_name, column_name, data_type
            from information_schema.columns
            where table_schema = ?
            order by table_name, ordinal_position
            """,
            [schema],
        ).fetchall()
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in rows:
        tables.setdefault(table, []).append((column, data_type))
    return tables


def copy_schema(warehouse: Path, target: Target, schema: str, handle: Any) -> dict[str, int]:
    """Replace ``schema`` in the target with the DuckDB file's tables of that schema; rows per table."""
    tables = duckdb_tables(warehouse, schema)
    if not tables:
        raise EngineError(f"{warehouse} has no tables in schema {schema!r}: run `cdp generate` first.")
    counts: dict[str, int] = {}
    if target.engine == "spark":
        handle.sql(f"create database if not exists `{schema}`")
    with tempfile.TemporaryDirectory(prefix="cdp-load-") as folder:
        for table, columns in tables.items():
            if target.engine == "postgres":
                counts[table] = _copy_to_postgres(warehouse, handle, schema, table, columns, Path(folder))
            elif target.engine == "spark":
                counts[table] = _copy_to_spark(warehouse, handle, schema, table, columns, Path(folder))
            else:
                raise EngineError(f"load-raw copies into postgres or spark targets, not {target.engine!r}.")
    return counts


def _copy_to_postgres(
    warehouse: Path, con: Any, schema: str, table: str, columns: list[tuple[str, str]], folder: Path
) -> int:
    csv = folder / f"{table}.csv"
    with connect(warehouse, read_only=True) as duck:
        duck.execute(f'copy (select * from "{schema}"."{table}") to \'{csv}\' (format csv, header false)')
        (rows,) = duck.execute(f'select count(*) from "{schema}"."{table}"').fetchall()[0]
    definition = ", ".join(f'"{name}" {column_type(data_type, "postgres")}' for name, data_type in columns)
    relation = _quoted("postgres", schema, table)
    with con, con.cursor() as cursor, csv.open() as source:
        cursor.execute(f'create schema if not exists "{schema}"')
        cursor.execute(f"drop table if exists {relation} cascade")
        cursor.execute(f"create table {relation} ({definition})")
        cursor.copy_expert(f"copy {relation} from stdin with (format csv)", source)
    return int(rows)


def _copy_to_spark(
    warehouse: Path, spark: Any, schema: str, table: str, columns: list[tuple[str, str]], folder: Path
) -> int:
    parquet = folder / f"{table}.parquet"
    with connect(warehouse, read_only=True) as duck:
        duck.execute(f'copy (select * from "{schema}"."{table}") to \'{parquet}\' (format parquet)')
    selected = ", ".join(
        f"cast(`{name}` as {column_type(data_type, 'spark')}) as `{name}`" for name, data_type in columns
    )
    spark.read.parquet(str(parquet)).createOrReplaceTempView("cdp_raw_load")
    spark.sql(f"drop table if exists `{schema}`.`{table}`")
    spark.sql(f"create table `{schema}`.`{table}` using parquet as select {selected} from cdp_raw_load")
    return int(spark.table(f"`{schema}`.`{table}`").count())


def load_raw(warehouse: Path, target: Target, schemas: tuple[str, ...] = ("raw",)) -> dict[str, int]:
    """Copy the raw tables (and any other ``schemas``) of a DuckDB file into the target; rows per table."""
    counts: dict[str, int] = {}
    with opened(target) as handle:
        for schema in schemas:
            for table, rows in copy_schema(warehouse, target, schema, handle).items():
                counts[f"{schema}.{table}"] = rows
    return counts
