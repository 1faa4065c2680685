"""Write tables of a target as parquet files, for tests that compare engines.

Run as a script (tests/engines.py does): Spark's JVM then lives and dies in this process.

    python tests/engine_dump.py --target spark --schema main --out DIR profiles profile_events
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cdp.engine_tables import opened, read_frame
from cdp.targets import load_target


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--warehouse", type=Path, help="the DuckDB file (duckdb targets)")
    parser.add_argument("tables", nargs="+")
    args = parser.parse_args()
    target = load_target(args.target)
    with opened(target, args.warehouse, read_only=True) as handle:
        for table in args.tables:
            read_frame(target, handle, args.schema, table).to_parquet(args.out / f"{table}.parquet", index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
