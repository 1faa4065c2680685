"""Run the benchmarks and print one table per benchmark (ours beside peers and floors).

    python -m benchmarks.run                       # every suite at its default sizes
    python -m benchmarks.run generator --sizes 10000 100000 1000000
    python -m benchmarks.run identity --sizes 100000
    python -m benchmarks.run build               # the 1M build, then the rebuild after 1% more data

Figures come from this one run on this machine; ratios compare figures from the same run.
Results are also written as JSON to benchmarks/results/ (not committed).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

SUITES = {
    "generator": ("benchmarks.bench_generator", [10_000, 100_000, 1_000_000]),
    "identity": ("benchmarks.bench_identity", [100_000, 1_000_000]),
    "predictive": ("benchmarks.bench_predictive", [20_000, 100_000]),
    "sync": ("benchmarks.bench_sync", [1_000_000, 10_000_000]),
    "connectors": ("benchmarks.bench_connectors", [100_000]),
    "build": ("benchmarks.bench_build", [1_000_000]),
}

RESULTS_DIR = Path(__file__).parent / "results"


def _format(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}" if value < 10 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_table(title: str, rows: list[dict], console: Console) -> None:
    if not rows:
        console.print(f"[yellow]{title}: no rows[/yellow]")
        return
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="left" if column in ("benchmark", "method", "measure") else "right")
    for row in rows:
        table.add_row(*(_format(row.get(column, "")) for column in columns))
    console.print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suites", nargs="*", help=f"Suites to run: {', '.join(SUITES)} (default: all).")
    parser.add_argument("--sizes", nargs="+", type=int, help="People counts (default: the suite's own).")
    args = parser.parse_args(argv)
    unknown = [suite for suite in args.suites if suite not in SUITES]
    if unknown:
        parser.error(f"unknown suite(s) {', '.join(unknown)}; choose from {', '.join(SUITES)}")
    console = Console()
    console.print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}")
    RESULTS_DIR.mkdir(exist_ok=True)
    for suite in args.suites or list(SUITES):
        module_name, default_sizes = SUITES[suite]
        module = __import__(module_name, fromlist=["run"])
        rows = module.run(args.sizes or default_sizes)
        print_table(f"benchmark: {suite}", rows, console)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        (RESULTS_DIR / f"{suite}-{stamp}.json").write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    main()
