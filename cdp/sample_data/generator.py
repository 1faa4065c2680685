"""Fill the warehouse's ``raw`` and ``ground_truth`` schemas with a synthetic customer base.

Usage::

    from cdp.sample_data.generator import GeneratorConfig, generate
    summary = generate(GeneratorConfig(people=10_000, seed=42), warehouse=None, progress=True)

People are generated chunk by chunk (households never straddle chunks); each chunk is
built in numpy/arrow and appended to DuckDB in one transaction, so memory stays
bounded by the chunk size at any scale. The next chunk is built on a worker thread
while DuckDB writes the current one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from cdp.sample_data.chunk import Chunk, World, build_chunk, build_world
from cdp.sample_data.config import GeneratorConfig, NoiseConfig
from cdp.sample_data.ids import IdAllocator, id_sql
from cdp.sample_data.schema import (
    GROUND_TRUTH_TABLES,
    KEYED_TABLES,
    NOISE_SELECT,
    RAW_TABLES,
    Batch,
    create_table_sql,
)
from cdp.settings import GROUND_TRUTH_SCHEMA, RAW_SCHEMA, warehouse_path
from cdp.warehouse import connect

__all__ = ["GenerationSummary", "GeneratorConfig", "NoiseConfig", "generate"]

DUCKDB_MEMORY_LIMIT = "1GB"
"""DuckDB otherwise keeps every block it wrote cached (up to 80% of RAM); the generator
never reads them back, so a modest cap keeps a run's memory flat at any size."""


@dataclass(frozen=True)
class GenerationSummary:
    """What a run produced: row counts per ``schema.table`` and how long it took."""

    people: int
    seconds: float
    warehouse: Path
    rows_by_table: dict[str, int] = field(default_factory=dict)

    @property
    def raw_rows(self) -> int:
        return sum(rows for table, rows in self.rows_by_table.items() if table.startswith(f"{RAW_SCHEMA}."))


def generate(cfg: GeneratorConfig, warehouse: Path | str | None = None, progress: bool = True) -> GenerationSummary:
    """(Re)create the raw and ground_truth tables in ``warehouse`` and fill them.

    Other schemas and any other tables in ``raw`` are left alone. ``warehouse`` defaults
    to ``cdp.settings.warehouse_path()`` (the ``CDP_WAREHOUSE`` variable).
    """
    path = Path(warehouse) if warehouse is not None else warehouse_path()
    started = time.perf_counter()
    world = build_world(cfg)
    con = connect(path)
    try:
        con.execute(f"set memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
        _create_tables(con)
        with _progress_bar(progress, cfg.people) as advance:
            for chunk in _chunks(cfg, world):
                _write_chunk(con, chunk)
                advance(chunk.size)
        _write_generation_info(con, cfg)
        con.execute("checkpoint")
        rows = _row_counts(con)
    finally:
        con.close()
    return GenerationSummary(
        people=cfg.people, seconds=time.perf_counter() - started, warehouse=path, rows_by_table=rows
    )


def _chunks(cfg: GeneratorConfig, world: World) -> Iterator[Chunk]:
    """Chunks in order, building chunk i+1 on a worker thread while the caller writes chunk i.

    Chunks are built one after another on the same thread (the id counters run on), so
    the pipelining changes timing only, never content.
    """
    ids = IdAllocator()

    def build(index: int) -> Chunk:
        size = min(cfg.chunk_size, cfg.people - index * cfg.chunk_size)
        return build_chunk(cfg, world, ids, index, size)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sample-data") as pool:
        pending: Future[Chunk] = pool.submit(build, 0)
        for index in range(1, cfg.chunk_count + 1):
            chunk = pending.result()
            if index < cfg.chunk_count:
                pending = pool.submit(build, index)
            yield chunk


def _create_tables(con: duckdb.DuckDBPyConnection) -> None:
    for schema, tables in ((RAW_SCHEMA, RAW_TABLES), (GROUND_TRUTH_SCHEMA, GROUND_TRUTH_TABLES)):
        con.execute(f"create schema if not exists {schema}")
        for table, columns in tables.items():
            con.execute(create_table_sql(schema, table, columns))


def _insert(
    con: duckdb.DuckDBPyConnection, schema: str, table: str, columns: tuple[tuple[str, str], ...], select: str
) -> None:
    names = ", ".join(name for name, _ in columns)
    con.execute(f"insert into {schema}.{table} ({names}) select {select} from batch")


def _write_batch(con: duckdb.DuckDBPyConnection, batch: Batch) -> None:
    con.register("batch", batch.data)
    try:
        _insert(con, RAW_SCHEMA, batch.table, RAW_TABLES[batch.table], batch.select)
        if batch.table in KEYED_TABLES:
            select = f"'{batch.table}', {id_sql(batch.table, 'record_no')}, {id_sql('person', 'person_no')}"
            _insert(con, GROUND_TRUTH_SCHEMA, "record_person", GROUND_TRUTH_TABLES["record_person"], select)
    finally:
        con.unregister("batch")


def _write_chunk(con: duckdb.DuckDBPyConnection, chunk: Chunk) -> None:
    con.execute("begin transaction")
    try:
        for batch in chunk.raw:
            _write_batch(con, batch)
        for table, data, select in (
            ("people", chunk.people.data, chunk.people.select),
            ("noise", chunk.noise, NOISE_SELECT),
        ):
            con.register("batch", data)
            try:
                _insert(con, GROUND_TRUTH_SCHEMA, table, GROUND_TRUTH_TABLES[table], select)
            finally:
                con.unregister("batch")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def _write_generation_info(con: duckdb.DuckDBPyConnection, cfg: GeneratorConfig) -> None:
    con.execute(
        f"insert into {GROUND_TRUTH_SCHEMA}.generation_info values (?, ?, ?, ?, ?, ?)",
        [cfg.seed, cfg.people, cfg.as_of_utc, cfg.chunk_size, cfg.noise.to_json(), cfg.history_days],
    )


def _row_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    counts: dict[str, int] = {}
    for schema, tables in ((RAW_SCHEMA, RAW_TABLES), (GROUND_TRUTH_SCHEMA, GROUND_TRUTH_TABLES)):
        for table in tables:
            counts[f"{schema}.{table}"] = int(con.execute(f"select count(*) from {schema}.{table}").fetchall()[0][0])
    return counts


@contextmanager
def _progress_bar(enabled: bool, total: int) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(people_done)``; a no-op when progress is off."""
    if not enabled:
        yield lambda _done: None
        return
    columns = (
        TextColumn("[bold]generating people"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("people", total=total)
        yield lambda done: bar.advance(task, done)
