"""The full `cdp build` at scale, model by model, and the rebuild after 1% more raw data.

For each size: generate that many people (or reuse a generated file named by
``CDP_BENCH_BUILD_RAW``, which is copied, never written), hold back 1% of every raw table
(cdp/sample_data/increment.py: by a hash of each row's key, so late rows include old events and
records that join existing profiles), then

1. ``cdp build`` of the other 99%: the full build (wall, peak memory, the slowest models);
2. release the held rows, ``cdp build`` again: the rebuild after 1% more raw data;
3. ``cdp build --full-refresh`` of the same data: its peer, every model from scratch;
4. ``cdp build`` once more, with no new raw rows: the incremental path's floor, what a rebuild
   costs whatever it is given (the models and dbt tests that read whole tables every build).

After 2, 3 and 4 every public table (schema main) is fingerprinted (row count and an
order-independent hash of its rows, without the columns that record when a build ran), so the
table says whether the rebuild, and the build with nothing new, left the same tables as the full
build. ``tests_s`` is the dbt tests' share of a build: their summed seconds in run_results.json
(beside another thread at threads 2, so an upper bound on their wall time).

Each build runs in a child process; peak memory is the largest process's maximum resident set
(getrusage of the children: dbt and DuckDB run in one process), and ``cpu_s`` the children's user
+ system CPU seconds. The host's speed can drift by ±15% within an hour, and each build meets a
different moment, so the rebuild is also given as a share of the full refresh's CPU time
(``cpu_vs_full_refresh``), which the drift moves less. Targets (issue 14): the full build ≤ 90 s
and ≤ 3 GB at 1M people; the rebuild ≤ 10% of the full build (judged on wall time).

    python -m benchmarks.run build --sizes 1000000
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb

from cdp.sample_data.increment import BUILD_TIME_COLUMNS, hold_back, release

REPO_ROOT = Path(__file__).resolve().parent.parent
RAW_ENV = "CDP_BENCH_BUILD_RAW"
HELD_PERCENT = 1.0

_BUILD = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": wall, "exit": done.returncode, "max_rss_kb": usage.ru_maxrss,
                  "cpu_seconds": usage.ru_utime + usage.ru_stime, "tail": (done.stdout + done.stderr)[-3000:]}))
"""


def _cdp(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("cdp")), *args]


def _timed_build(warehouse: Path, *args: str) -> dict:
    env = {**os.environ, "CDP_WAREHOUSE": str(warehouse)}
    done = subprocess.run(
        [sys.executable, "-c", _BUILD, *_cdp("build", *args)], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["exit"] != 0:
        raise RuntimeError(f"cdp build {' '.join(args)} failed (exit {result['exit']}):\n{result['tail']}")
    return result


def _run_results() -> list[dict]:
    """The last dbt invocation's results (run_results.json): one per node it ran."""
    from cdp.dbt import DBT_PROJECT_DIR, dbt_target_path

    path = dbt_target_path()
    return json.loads(((path if path.is_absolute() else DBT_PROJECT_DIR / path) / "run_results.json").read_text())[
        "results"
    ]


def _model_seconds() -> dict[str, float]:
    """Each model's seconds in the last build, by name."""
    return {
        result["unique_id"].split(".")[-1]: result["execution_time"]
        for result in _run_results()
        if result["unique_id"].startswith("model.")
    }


def _test_seconds() -> float:
    """The summed seconds of the last build's dbt tests (data and unit tests)."""
    return sum(
        result["execution_time"] for result in _run_results() if result["unique_id"].startswith(("test.", "unit_test."))
    )


def fingerprints(warehouse: Path) -> dict[str, tuple[int, int]]:
    """(rows, order-independent hash of the rows) of every table and view in schema main; doubles to 9
    decimals (a sum of doubles depends on the order the rows are read in)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = [
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables where table_schema = 'main' order by 1"
            ).fetchall()
        ]
        result = {}
        for table in tables:
            columns = [
                f'round("{name}", 9)' if data_type in ("DOUBLE", "FLOAT") else f'"{name}"'
                for name, data_type in con.execute(
                    "select column_name, data_type from information_schema.columns "
                    "where table_schema = 'main' and table_name = ? order by ordinal_position",
                    [table],
                ).fetchall()
                if name not in BUILD_TIME_COLUMNS
            ]
            listed = ", ".join(columns)
            rows, digest = con.execute(
                f'select count(*), coalesce(bit_xor(hash(row({listed}))), 0) from main."{table}"'
            ).fetchone()
            result[table] = (rows, digest)
    return result


def _differing(after: dict[str, tuple[int, int]], reference: dict[str, tuple[int, int]]) -> list[str]:
    """The tables whose fingerprint differs from the reference's, or that only one of them has."""
    return sorted(name for name in set(after) | set(reference) if after.get(name) != reference.get(name))


def _figures(measure: str, size: int, build: dict, tests: float, refresh: dict | None = None) -> dict:
    """A build's row: wall, CPU, peak memory, its tests' seconds, and its share of the full refresh's."""
    figures = {
        "benchmark": "build",
        "measure": measure,
        "size": size,
        "seconds": round(build["seconds"], 1),
        "cpu_s": round(build["cpu_seconds"], 1),
        "peak_rss_mb": round(build["max_rss_kb"] / 1024),
        "tests_s": round(tests, 1),
    }
    if refresh is not None:
        figures["vs_full_refresh"] = round(build["seconds"] / refresh["seconds"], 3)
        figures["cpu_vs_full_refresh"] = round(build["cpu_seconds"] / refresh["cpu_seconds"], 3)
    return figures


def _slowest(seconds: dict[str, float], count: int = 8) -> str:
    top = sorted(seconds.items(), key=lambda item: -item[1])[:count]
    return ", ".join(f"{name} {value:.1f}" for name, value in top)


def _generated(size: int, folder: Path) -> Path:
    given = os.environ.get(RAW_ENV)
    # not raw.duckdb: DuckDB names the catalog after the file, and a catalog `raw` hides schema raw
    path = folder / "warehouse.duckdb"
    if given:
        shutil.copy(given, path)
        return path
    from cdp.sample_data.generator import GeneratorConfig, generate

    generate(GeneratorConfig(people=size, seed=42), warehouse=path, progress=False)
    return path


def run(sizes: list[int]) -> list[dict]:
    rows: list[dict] = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
            warehouse = _generated(size, Path(tmp))
            with duckdb.connect(str(warehouse)) as con:
                hold_back(con, HELD_PERCENT)
            full = _timed_build(warehouse)
            full_models, full_tests = _model_seconds(), _test_seconds()
            with duckdb.connect(str(warehouse)) as con:
                released = sum(release(con).values())
            rebuild = _timed_build(warehouse)
            rebuild_models, rebuild_tests = _model_seconds(), _test_seconds()
            after_rebuild = fingerprints(warehouse)
            refresh = _timed_build(warehouse, "--full-refresh")
            refresh_tests = _test_seconds()
            after_refresh = fingerprints(warehouse)
            nothing_new = _timed_build(warehouse)
            nothing_new_models, nothing_new_tests = _model_seconds(), _test_seconds()
            after_nothing_new = fingerprints(warehouse)
        differing, differing_after_nothing_new = (
            _differing(after_rebuild, after_refresh),
            _differing(after_nothing_new, after_refresh),
        )
        rows += [
            {
                **_figures("full cdp build (99% of the data)", size, full, full_tests),
                "target": "≤ 90 s, ≤ 3,072 MB",
                "met": full["seconds"] <= 90 and full["max_rss_kb"] / 1024 <= 3072,
                "slowest models (s)": _slowest(full_models),
            },
            {
                **_figures(f"rebuild after {released:,} more raw rows (1%)", size, rebuild, rebuild_tests, refresh),
                "target": "≤ 0.10 of the full build",
                "met": rebuild["seconds"] <= 0.10 * refresh["seconds"],
                "same tables": not differing,
                "slowest models (s)": _slowest(rebuild_models),
            },
            {
                **_figures(
                    "cdp build with no new raw rows (the incremental path's floor)",
                    size,
                    nothing_new,
                    nothing_new_tests,
                    refresh,
                ),
                "same tables": not differing_after_nothing_new,
                "tables differing": ", ".join(differing_after_nothing_new) or "none",
                "slowest models (s)": _slowest(nothing_new_models),
            },
            {
                **_figures("cdp build --full-refresh of the same data (peer)", size, refresh, refresh_tests),
                "tables differing": ", ".join(differing) or "none",
            },
        ]
    return rows


def main(argv: list[str]) -> None:
    for result in run([int(arg.replace("_", "")) for arg in argv] or [100_000]):
        print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
