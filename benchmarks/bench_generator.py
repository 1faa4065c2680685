"""How fast the sample-data generator fills a warehouse, next to what DuckDB alone needs.

Each size runs in a fresh Python process (so peak memory is that run's own) writing a
fresh DuckDB file. The floor is DuckDB writing the same number of rows of a trivial
``range()`` table of similar width (7 columns, ids and JSON-ish text): the generator
cannot beat it, and the gap is the cost of making the data.

    python benchmarks/bench_generator.py 10000 100000 1000000
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

_GENERATE = """
import json, resource, sys
from pathlib import Path
from cdp.sample_data.generator import GeneratorConfig, generate
summary = generate(GeneratorConfig(people=int(sys.argv[1]), seed=42), warehouse=Path(sys.argv[2]), progress=False)
print(json.dumps({
    "seconds": summary.seconds,
    "raw_rows": summary.raw_rows,
    "rows_written": sum(summary.rows_by_table.values()),
    "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
}))
"""

_FLOOR = """
import json, sys, time, duckdb
con = duckdb.connect(sys.argv[2])
started = time.perf_counter()
con.execute('''
    create table t as select
        'W' || lpad(i::varchar, 10, '0') as event_id,
        'A' || lpad((i // 15)::varchar, 10, '0') as anonymous_id,
        case when i % 3 = 0 then 'S' || lpad((i // 40)::varchar, 10, '0') end as user_id,
        case i % 4 when 0 then 'page_viewed' when 1 then 'product_viewed' else 'identify' end as event_type,
        '{"path":"/c/' || (i % 97)::varchar || '"}' as properties,
        timestamp '2024-01-01' + to_seconds(i % 90000000) as occurred_at,
        timestamp '2024-01-01' + to_seconds(i % 90000000 + 600) as loaded_at
    from range(?) r(i)
''', [int(sys.argv[1])])
con.execute('checkpoint')
con.close()
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def _run_child(code: str, *args: str) -> tuple[dict, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), wall


def run(sizes: list[int]) -> list[dict]:
    """One result per size: wall time, throughput, peak memory, and the DuckDB floor."""
    results: list[dict] = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-generator-") as tmp:
            child, wall = _run_child(_GENERATE, str(size), str(Path(tmp) / "generated.duckdb"))
            floor, _ = _run_child(_FLOOR, str(child["rows_written"]), str(Path(tmp) / "floor.duckdb"))
        results.append(
            {
                "benchmark": "generator",
                "size": size,
                "seconds": round(wall, 3),
                "people_per_s": round(size / wall, 1),
                "rows": child["raw_rows"],
                "rows_per_s": round(child["raw_rows"] / wall, 1),
                "rows_written": child["rows_written"],
                "peak_rss_mb": round(child["max_rss_kb"] / 1024, 1),
                "floor_seconds": round(floor["seconds"], 3),
            }
        )
    return results


def main(argv: list[str]) -> None:
    sizes = [int(arg.replace("_", "")) for arg in argv] or [10_000]
    for result in run(sizes):
        print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
