"""Identity resolution: our dbt identity step beside an in-memory floor and a peer.

For each size (simulated people):

1. generate the sample into a fresh temp DuckDB file;
2. build seeds + the staging views identity reads (untimed), then time
   ``dbt run --select IDENTITY_SELECT`` — our whole identity step, as ``cdp build`` runs it on
   DuckDB (connected components in memory: models/identity/components_in_memory/);
3. time the portable path too: the same two component models rebuilt with the SQL fixpoint
   (``--vars '{identity_components_in_sql: true}'``, what Postgres and Spark run);
4. export the graph both component paths ran on (the view ``int_identity__linkable_record_nodes``:
   linkable record nodes and their record-star edges) into ``bench_nodes`` /
   ``bench_edges``, so every method reads identical input;
5. floor: ``scipy.sparse.csgraph.connected_components`` in memory (the call alone;
   ``load_seconds`` is fetching the edges from DuckDB and building the CSR matrix);
6. peer: Splink's ``cluster_pairwise_predictions_at_threshold`` on the same tables, in the
   same DuckDB file (the call, whose result is a materialised table, plus a count of it);
7. cross-check: the four partitions must be identical node for node (each node labelled
   with the smallest node id of its component). A mismatch is printed loudly and shows as
   ``same_partition = False``; it is never hidden.

Columns: ``seconds`` is each method's own wall time — for ours the whole identity step
(dbt start-up, record/identifier models, guard, both component phases, profile ids, the
erasure models the registry reads); for the portable row the dbt run of its two component
models; ``cc_seconds`` is connected components alone — for ours the phase-2 model
``int_identity__components`` (dbt's execution time: reading its graph view + components +
writing the result); ``ratio_vs_floor`` is ``cc_seconds`` over scipy's call, so like is
compared with like. The rows ``model: <name>`` are dbt's execution time of each model of the
timed identity step.

    .venv/bin/python -m benchmarks.run identity --sizes 100000
    .venv/bin/python -m benchmarks.bench_identity 100000

Set CDP_BENCH_KEEP=1 to keep the temp warehouse (its path is printed).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

OURS = "ours: dbt identity step (DuckDB: components in memory)"
PORTABLE = "ours, portable: dbt SQL fixpoint (on DuckDB)"
FLOOR = "floor: scipy connected_components (in memory)"
PEER = "peer: Splink cluster_pairwise_predictions_at_threshold"

#: Upstream of identity, built untimed: the seeds and staging views identity reads.
PREPARE_SELECT = (
    "+stg_crm__contacts +stg_shop__customers +stg_web__events "
    "+stg_email__events +stg_pos__transactions +stg_support__tickets +stg_privacy__deletion_requests"
)

#: The identity step, timed: every identity model, and the erasure models the registry and the
#: merges read (macro erased_profile_ids), which sit between the assignments and them.
IDENTITY_SELECT = "path:models/identity int_privacy__requests privacy_erasures privacy_tombstones"

#: This benchmark measures internal models, so it reads schema `intermediate` (where every
#: int_ model lives; product code reads only the public models in `main`).
#:
#: The phase-2 input, as both paths of int_identity__components read it: the view
#: int_identity__linkable_record_nodes (which record carries which linkable node), as nodes and
#: record-star edges (each record's smallest node joined to each of its nodes: macro
#: record_star_edges), de-duplicated and without self-loops — the macro's `select distinct
#: node_id` / `select distinct node_a, node_b ... where node_a <> node_b`.
EXPORT_SQL = """
create or replace table main.bench_linkable_record_nodes as
select record_number, node_id from intermediate.int_identity__linkable_record_nodes;

create or replace table main.bench_nodes as
select distinct node_id from main.bench_linkable_record_nodes;

create or replace table main.bench_edges as
select distinct node_a, node_b, cast(1.0 as double) as match_probability
from (
    select
        min(node_id) over (partition by record_number) as node_a,
        node_id as node_b
    from main.bench_linkable_record_nodes
) as star
where node_a <> node_b;

drop table main.bench_linkable_record_nodes;
"""

#: Where the in-memory path's components are kept while the portable path rebuilds the model.
IN_MEMORY_COPY = "main.bench_ours_in_memory"

#: The portable path: the two component models, rebuilt with the SQL fixpoint.
PORTABLE_ARGS = [
    "run",
    "--select",
    "int_identity__strong_groups int_identity__components",
    "--vars",
    "{identity_components_in_sql: true}",
]


def _log(message: str) -> None:
    print(f"[identity {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _loud(message: str) -> None:
    bar = "!" * 78
    print(f"\n{bar}\n!! {message}\n{bar}\n", file=sys.stderr, flush=True)


def _wait_for_generator(poll_seconds: float = 60.0, max_wait_seconds: float = 6 * 3600) -> None:
    """The generator is being written alongside; wait for it rather than fail."""
    module = Path(__file__).resolve().parent.parent / "cdp" / "sample_data" / "generator.py"
    waited = 0.0
    while not module.exists():
        if waited >= max_wait_seconds:
            raise RuntimeError(f"{module} still missing after {waited:.0f}s")
        if waited == 0:
            _log(f"waiting for {module} to appear (polling every {poll_seconds:.0f}s)")
        time.sleep(poll_seconds)
        waited += poll_seconds


def _dbt(args: list[str], warehouse: Path, dbt_dir: Path) -> None:
    """run_dbt with target/ and logs/ in the benchmark's temp dir (never the project's)."""
    from cdp.dbt import run_dbt

    run_dbt(
        [*args, "--target-path", str(dbt_dir / "target"), "--log-path", str(dbt_dir / "logs")],
        warehouse=warehouse,
        echo=False,
    )


def _model_timings(dbt_dir: Path) -> dict[str, float]:
    results = json.loads((dbt_dir / "target" / "run_results.json").read_text())
    return {result["unique_id"].split(".")[-1]: float(result["execution_time"]) for result in results["results"]}


def _scipy_components(con) -> tuple[dict, object, object]:
    """Floor: returns (figures, sorted node ids, smallest node id of each node's component)."""
    import numpy as np
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    start = time.perf_counter()
    nodes = con.execute("select node_id from main.bench_nodes order by node_id").fetchnumpy()["node_id"]
    nodes = np.asarray(nodes, dtype=np.int64)
    edges = con.execute("select node_a, node_b from main.bench_edges").fetchnumpy()
    a = np.searchsorted(nodes, np.asarray(edges["node_a"], dtype=np.int64)).astype(np.int32)
    b = np.searchsorted(nodes, np.asarray(edges["node_b"], dtype=np.int64)).astype(np.int32)
    del edges
    n = len(nodes)
    matrix = csr_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    del a, b
    load_seconds = time.perf_counter() - start

    start = time.perf_counter()
    count, labels = connected_components(matrix, directed=False, return_labels=True)
    seconds = time.perf_counter() - start
    del matrix

    # nodes are sorted, so a label's first occurrence is its component's smallest node id
    _, first_index = np.unique(labels, return_index=True)
    component_min = nodes[first_index][labels]
    return {"components": int(count), "seconds": seconds, "load_seconds": load_seconds}, nodes, component_min


class _IterationCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.iterations = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Completed iteration "):
            self.iterations = max(self.iterations, int(message.split()[2].rstrip(",")))


def _splink_components(con) -> tuple[dict, str]:
    """Peer: Splink's SQL connected components on the same tables. Returns (figures, result table)."""
    from splink import DuckDBAPI
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    counter = _IterationCounter()
    cc_logger = logging.getLogger("splink.internals.connected_components")
    previous_level = cc_logger.level
    cc_logger.setLevel(logging.INFO)
    cc_logger.addHandler(counter)
    try:
        db_api = DuckDBAPI(con)
        start = time.perf_counter()
        result = cluster_pairwise_predictions_at_threshold(
            "main.bench_nodes",
            "main.bench_edges",
            db_api=db_api,
            node_id_column_name="node_id",
            edge_id_column_name_left="node_a",
            edge_id_column_name_right="node_b",
            threshold_match_probability=0.5,
        )
        # the result is already a table (create table as); counting it forces nothing lazy
        rows = con.execute(f"select count(*) from {result.physical_name}").fetchone()[0]
        seconds = time.perf_counter() - start
    finally:
        cc_logger.removeHandler(counter)
        cc_logger.setLevel(previous_level)

    table = "main.bench_splink_clusters"
    con.execute(f"create or replace table {table} as select node_id, cluster_id from {result.physical_name}")
    result.drop_table_from_database_and_remove_from_cache()
    components = con.execute(f"select count(distinct cluster_id) from {table}").fetchone()[0]
    return {
        "components": int(components),
        "seconds": seconds,
        "rows": int(rows),
        "iterations": counter.iterations,
    }, table


def _compare_with_ours(con, ours_table: str, scipy_nodes, scipy_min, splink_table: str) -> dict[str, str | None]:
    """Node-for-node comparison with our components (``ours_table``: node_id, component_id); returns a
    problem per method (or None)."""
    import numpy as np

    problems: dict[str, str | None] = {}

    ours = con.execute(f"select node_id, component_id from {ours_table} order by node_id").fetchnumpy()
    ours_nodes = np.asarray(ours["node_id"], dtype=np.int64)
    ours_min = np.asarray(ours["component_id"], dtype=np.int64)
    if len(ours_nodes) != len(np.unique(ours_nodes)):
        problems["ours"] = f"{ours_table} has duplicate node_ids"
    else:
        problems["ours"] = None

    if len(ours_nodes) != len(scipy_nodes) or not np.array_equal(ours_nodes, scipy_nodes):
        problems["scipy"] = (
            f"node sets differ: ours {len(ours_nodes):,} nodes, exported graph {len(scipy_nodes):,} "
            f"(the export does not reproduce {ours_table}'s input)"
        )
    else:
        differing = int(np.count_nonzero(ours_min != scipy_min))
        problems["scipy"] = None if differing == 0 else f"{differing:,} nodes labelled differently from ours"

    mismatch = con.execute(
        f"""
        with splink as (
            select node_id, min(node_id) over (partition by cluster_id) as component_min
            from {splink_table}
        ),
        dupes as (
            select count(*) - count(distinct node_id) as n from {splink_table}
        )
        select
            (select n from dupes) as duplicate_rows,
            count(*) filter (where ours.node_id is null) as only_splink,
            count(*) filter (where splink.node_id is null) as only_ours,
            count(*) filter (
                where ours.node_id is not null and splink.node_id is not null
                and ours.component_id <> splink.component_min
            ) as relabelled
        from {ours_table} as ours
        full outer join splink on splink.node_id = ours.node_id
        """
    ).fetchone()
    duplicate_rows, only_splink, only_ours, relabelled = (int(v) for v in mismatch)
    if duplicate_rows or only_splink or only_ours or relabelled:
        problems["splink"] = (
            f"duplicate rows {duplicate_rows:,}, nodes only in Splink {only_splink:,}, "
            f"only in ours {only_ours:,}, labelled differently {relabelled:,}"
        )
    else:
        problems["splink"] = None
    return problems


def _run_size(people: int) -> list[dict]:
    from cdp.sample_data.generator import GeneratorConfig, generate
    from cdp.warehouse import connect

    workdir = Path(tempfile.mkdtemp(prefix=f"cdp-bench-identity-{people}-"))
    warehouse = workdir / "warehouse.duckdb"
    dbt_dir = workdir / "dbt"
    keep = os.environ.get("CDP_BENCH_KEEP") == "1"
    try:
        _log(f"{people:,} people: generating into {warehouse}")
        start = time.perf_counter()
        generate(GeneratorConfig(people=people, seed=42), warehouse=warehouse, progress=False)
        _log(f"generated in {time.perf_counter() - start:.1f}s; building seeds + staging (untimed)")

        start = time.perf_counter()
        _dbt(["build", "--select", PREPARE_SELECT, "--exclude", "resource_type:test"], warehouse, dbt_dir)
        _log(f"seeds + staging built in {time.perf_counter() - start:.1f}s; running identity (timed)")

        start = time.perf_counter()
        _dbt(["run", "--select", IDENTITY_SELECT], warehouse, dbt_dir)
        ours_seconds = time.perf_counter() - start
        timings = _model_timings(dbt_dir)
        _log(
            f"identity step {ours_seconds:.1f}s wall; per model: "
            + ", ".join(f"{name} {secs:.1f}s" for name, secs in sorted(timings.items(), key=lambda kv: -kv[1]))
        )

        with connect(warehouse) as con:
            con.execute(
                f"create or replace table {IN_MEMORY_COPY} as "
                "select node_id, component_id from intermediate.int_identity__components"
            )
        _log("rebuilding the component models with the portable SQL fixpoint (timed)")
        start = time.perf_counter()
        _dbt(PORTABLE_ARGS, warehouse, dbt_dir)
        portable_seconds = time.perf_counter() - start
        portable_timings = _model_timings(dbt_dir)
        _log(
            f"portable: {portable_seconds:.1f}s wall; strong groups "
            f"{portable_timings['int_identity__strong_groups']:.1f}s, components "
            f"{portable_timings['int_identity__components']:.1f}s"
        )

        with connect(warehouse) as con:
            strong_passes = con.execute("select passes from intermediate.int_identity__strong__passes").fetchone()[0]
            final_passes = con.execute("select passes from intermediate.int_identity__components__passes").fetchone()[0]

            start = time.perf_counter()
            con.execute(EXPORT_SQL)
            export_seconds = time.perf_counter() - start
            nodes, edges = con.execute(
                "select (select count(*) from main.bench_nodes), (select count(*) from main.bench_edges)"
            ).fetchone()
            ours_components = con.execute(f"select count(distinct component_id) from {IN_MEMORY_COPY}").fetchone()[0]
            portable_components = con.execute(
                "select count(distinct component_id) from intermediate.int_identity__components"
            ).fetchone()[0]
            _log(f"exported graph in {export_seconds:.1f}s: {nodes:,} nodes, {edges:,} edges; floor (scipy)")

            floor, scipy_nodes, scipy_min = _scipy_components(con)
            _log(f"scipy: {floor['seconds']:.2f}s (+{floor['load_seconds']:.1f}s load); peer (Splink)")

            peer, splink_table = _splink_components(con)
            _log(f"Splink: {peer['seconds']:.1f}s, {peer['iterations']} iterations; comparing partitions")

            problems = _compare_with_ours(con, IN_MEMORY_COPY, scipy_nodes, scipy_min, splink_table)
            portable_problems = _compare_with_ours(
                con, "intermediate.int_identity__components", scipy_nodes, scipy_min, splink_table
            )
            del scipy_nodes, scipy_min
        problems.update({f"portable vs {key}": value for key, value in portable_problems.items()})

        counts = {
            "ours": ours_components,
            "portable": portable_components,
            "scipy": floor["components"],
            "splink": peer["components"],
        }
        if len(set(counts.values())) != 1:
            problems["counts"] = f"component counts differ: {counts}"
        same = not any(problems.values())
        if not same:
            _loud(
                f"PARTITIONS DIFFER at {people:,} people — "
                + "; ".join(f"{key}: {value}" for key, value in problems.items() if value)
            )
        else:
            _log(f"all four partitions identical: {ours_components:,} components")

        cc_ours = timings.get("int_identity__components", float("nan"))
        cc_portable = portable_timings.get("int_identity__components", float("nan"))
        base = {"benchmark": "identity", "people": people, "nodes": int(nodes), "edges": int(edges)}
        return [
            {
                **base,
                "method": OURS,
                "components": int(ours_components),
                "seconds": ours_seconds,
                "cc_seconds": cc_ours,
                "load_seconds": "",
                "passes": "one (in memory)",
                "ratio_vs_floor": cc_ours / floor["seconds"],
                "same_partition": problems["ours"] is None
                and problems["scipy"] is None
                and problems["splink"] is None
                and "counts" not in problems,
            },
            {
                **base,
                "method": PORTABLE,
                "components": int(portable_components),
                "seconds": portable_seconds,
                "cc_seconds": cc_portable,
                "load_seconds": "",
                "passes": f"strong {strong_passes} / final {final_passes}",
                "ratio_vs_floor": cc_portable / floor["seconds"],
                "same_partition": not any(value for key, value in problems.items() if key.startswith("portable"))
                and "counts" not in problems,
            },
            {
                **base,
                "method": FLOOR,
                "components": floor["components"],
                "seconds": floor["seconds"],
                "cc_seconds": floor["seconds"],
                "load_seconds": floor["load_seconds"] + export_seconds,
                "passes": "",
                "ratio_vs_floor": 1.0,
                "same_partition": problems["scipy"] is None and counts["scipy"] == counts["ours"],
            },
            {
                **base,
                "method": PEER,
                "components": peer["components"],
                "seconds": peer["seconds"],
                "cc_seconds": peer["seconds"],
                "load_seconds": "",
                "passes": f"{peer['iterations']} iterations",
                "ratio_vs_floor": peer["seconds"] / floor["seconds"],
                "same_partition": problems["splink"] is None and counts["splink"] == counts["ours"],
            },
            *(
                {**base, "method": f"model: {name}", "seconds": secs}
                for name, secs in sorted(timings.items(), key=lambda kv: -kv[1])
                if not name.startswith("cdp-on-run-start")
            ),
        ]
    finally:
        if keep:
            _log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def run(sizes: list[int]) -> list[dict]:
    _wait_for_generator()
    rows: list[dict] = []
    for people in sizes:
        rows.extend(_run_size(people))
    return rows


if __name__ == "__main__":
    from rich.console import Console

    from benchmarks.run import print_table

    requested = [int(arg.replace("_", "")) for arg in sys.argv[1:]] or [100_000]
    print_table("benchmark: identity", run(requested), Console())
