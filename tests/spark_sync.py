"""Spark work for tests/test_sync_dialects.py, in a child process of its own.

A JVM inside the pytest process would hold Spark's embedded Derby metastore for the rest of
the session (one JVM at a time), so the Spark side of the sync tests runs here:

    python tests/spark_sync.py golden FOLDER < cases.json          -> holdout buckets and key hashes
    python tests/spark_sync.py sync FOLDER URL SECRET STATE.duckdb  -> two runs of a sync from Spark

Each prints one JSON line prefixed with RESULT_MARKER.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

RESULT_MARKER = "SPARK_SYNC_RESULT "


def spark_settings(folder: Path) -> dict:
    """A local Spark as the spark dbt target configures it, its tables and metastore in ``folder``."""
    return {
        "method": "session",
        "server_side_parameters": {
            "spark.master": "local[1]",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.log.level": "ERROR",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.driver.host": "127.0.0.1",
            "spark.driver.memory": "1g",
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": "2",
            "spark.sql.warehouse.dir": str(folder / "tables"),
            "spark.driver.extraJavaOptions": f"-Dderby.system.home={folder / 'metastore'} -Duser.timezone=UTC",
        },
    }


def golden(folder: Path) -> dict:
    from destinations.sql_templates import dialect_macros
    from destinations.warehouse.locations import SparkCatalog

    cases = json.load(sys.stdin)
    d = dialect_macros("spark")
    with SparkCatalog(spark_settings(folder)).open() as spark:
        rows = [
            spark.fetch(
                f"select {d.holdout_bucket(':sync_name || :colon || :profile_id')}, {d.sha256(':key')}",
                {"sync_name": sync_name, "colon": ":", "profile_id": profile_id, "key": key},
            )[0]
            for sync_name, profile_id, key in cases
        ]
    return {"buckets": [int(row[0]) for row in rows], "hashes": [row[1] for row in rows]}


def sync(folder: Path, url: str, secret: str, state_file: Path) -> dict:
    from sync_world import PROFILE_COLUMNS, SEGMENT, Person, definition, people
    from sync_world import _table as table

    from destinations.engine import run_sync
    from destinations.warehouse.locations import DuckDBFile, SparkCatalog
    from destinations.webhook import WebhookDestination

    spark_location = SparkCatalog(spark_settings(folder))

    def load(crowd: dict[str, Person]) -> None:
        """The three tables a sync reads, as a Spark build leaves them (plain parquet tables)."""
        from decimal import Decimal

        import pyarrow as pa

        with spark_location.open() as spark:
            spark.execute("create database if not exists main")
            fields = [
                (pid, p.email, p.phone, p.first_name, p.last_name, p.city, p.postal_code, p.country)
                + (
                    None if p.lifetime_value is None else Decimal(str(p.lifetime_value)),
                    p.consent,
                    p.consent,
                    p.deleted,
                )
                for pid, p in sorted(crowd.items())
            ]
            members = [(SEGMENT, pid) for pid, p in sorted(crowd.items()) if p.in_segment]
            segments = table({"segment_name": pa.string(), "min_size": pa.int32()}, [(SEGMENT, None)])
            spark.load_rows("main.segments", segments, temporary=False)
            spark.load_rows("main.sync_profile_fields", table(PROFILE_COLUMNS, fields), temporary=False)
            membership = table({"segment_name": pa.string(), "profile_id": pa.string()}, members)
            spark.load_rows("main.segment_membership", membership, temporary=False)

    def run(sync_definition):
        result = run_sync(
            sync_definition,
            warehouse=spark_location,
            state_store=DuckDBFile(state_file),
            connect_destination=lambda _: WebhookDestination("hook", url, secret, sync_name=sync_definition.name),
        )
        plan = result.plan
        return {
            "status": result.status,
            "message": result.message,
            "ops": [plan.adds, plan.updates, plan.removes] if plan else None,
            "excluded_holdout": plan.excluded_holdout if plan else None,
            "confirmed": result.confirmed,
        }

    crowd = people(6)
    crowd["p002"] = replace(crowd["p002"], consent=False)
    crowd["n1"] = Person(email=None)
    load(crowd)
    first = run(definition())
    crowd["p000"] = replace(crowd["p000"], first_name="Grace")
    crowd["p001"] = replace(crowd["p001"], in_segment=False)
    load(crowd)
    second = run(definition(max_removal_share=1.0))
    holdout = run(definition("held_out", holdout_percent=50))
    return {"first": first, "second": second, "holdout": holdout}


def main() -> None:
    mode, folder, *rest = sys.argv[1:]
    if mode == "golden":
        result = golden(Path(folder))
    else:
        url, secret, state_file = rest
        result = sync(Path(folder), url, secret, Path(state_file))
    print(RESULT_MARKER + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
