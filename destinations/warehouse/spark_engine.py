"""The Spark warehouse (pyspark, the `spark` extra): where a Spark build's data lives.

Spark computes a sync's desired rows; it never keeps sync state (plain parquet tables have no
transactions, no DELETE, no UPDATE), so :attr:`transactional` is False and the engine keeps its
state in a DuckDB or Postgres state store (destinations/warehouse/locations.py). Binds are
Spark's own ``:name`` markers (``spark.sql(sql, args=…)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from destinations.warehouse.base import MissingTableError, Params, Warehouse, WarehouseError, used


def spark_session(settings: Mapping[str, Any]):
    """A SparkSession from a profiles.yml spark output (cdp.engine_tables builds it, for dbt's
    session method or Spark Connect's ``connect_url``)."""
    from cdp.engine_tables import EngineError
    from cdp.engine_tables import spark_session as build_session
    from cdp.targets import Target

    try:
        return build_session(Target(name="spark", engine="spark", settings=dict(settings)))
    except EngineError as error:
        raise WarehouseError(str(error)) from error


class SparkWarehouse(Warehouse):
    dialect = "spark"
    transactional = False

    def __init__(self, spark, *, stop_on_close: bool = False):
        self.spark = spark
        self.stop_on_close = stop_on_close

    def _sql(self, sql: str, params: Params | None):
        from pyspark.errors import AnalysisException

        values = used(sql, params)
        try:
            return self.spark.sql(sql, args=values) if values else self.spark.sql(sql)
        except AnalysisException as error:
            if "TABLE_OR_VIEW_NOT_FOUND" in str(error) or "SCHEMA_NOT_FOUND" in str(error):
                raise MissingTableError(str(error).strip().splitlines()[0]) from error
            raise

    def execute(self, sql: str, params: Params | None = None) -> None:
        self._sql(sql, params).collect()

    def query(self, sql: str, params: Params | None = None) -> tuple[list[str], list[tuple]]:
        frame = self._sql(sql, params)
        return list(frame.columns), [tuple(row) for row in frame.collect()]

    def fetch_arrow(self, sql: str, params: Params | None = None) -> pa.Table:
        return self._sql(sql, params).toArrow()

    def has_table(self, schema: str, table: str) -> bool:
        return bool(self.spark.catalog.tableExists(f"{schema}.{table}"))

    def create_table_as(self, name: str, sql: str, params: Params | None = None, *, temporary: bool = False) -> None:
        frame = self._sql(sql, params)
        if temporary:
            frame.createOrReplaceTempView(name)
        else:
            frame.write.mode("overwrite").format("parquet").saveAsTable(name)

    def load_rows(self, name: str, rows: pa.Table, *, temporary: bool = True) -> None:
        frame = self.spark.createDataFrame(rows)
        if temporary:
            frame.createOrReplaceTempView(name)
        else:
            frame.write.mode("overwrite").format("parquet").saveAsTable(name)

    def drop_loaded(self, name: str) -> None:
        self.spark.catalog.dropTempView(name)

    def close(self) -> None:
        if self.stop_on_close:
            self.spark.stop()
