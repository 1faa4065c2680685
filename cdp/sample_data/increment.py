"""Split generated raw data into "what arrived first" and "what arrived later".

The incremental build is checked (tests/test_incremental_build.py) and measured
(benchmarks/bench_build.py) the same way: hold back a share of every raw table, build, release
the held rows, build again, and compare with a full build of everything. Which rows wait is a
hash of each row's key, not its timestamp, so the late rows include old events that arrive late
(the case a timestamp watermark gets wrong) and records that join two existing profiles.

    hold_back(con, percent=1)   # moves ~1% of every raw table into schema raw_pending
    release(con)                # moves them back (appended to raw), drops raw_pending
"""

from __future__ import annotations

import duckdb

from cdp.contract import RAW_TABLES
from cdp.settings import RAW_SCHEMA

#: Where held-back rows wait between the two builds.
PENDING_SCHEMA = "raw_pending"

#: Columns of the public tables that say when a build ran, not what it computed: comparisons of an
#: incremental build with a full one (the tests, the build benchmark) leave them out.
BUILD_TIME_COLUMNS = frozenset({"assigned_at", "merged_at", "clustered_at", "refreshed_at", "erased_at", "staged_at"})

#: The column whose hash decides whether a row waits (tables in this order); consent events
#: (no key of their own) by what they record. An order also waits with its customer, and order
#: lines with their order, as the raw contract's relationships require (RELATED below).
HOLD_BACK_KEY = {
    "crm_contacts": "contact_id",
    "shop_customers": "customer_id",
    "shop_orders": "order_id",
    "shop_order_items": "order_id",
    "web_events": "event_id",
    "email_events": "event_id",
    "pos_transactions": "transaction_id",
    "support_tickets": "ticket_id",
    "consent_events": "identifier_value || purpose || cast(recorded_at as varchar)",
    "deletion_requests": "request_id",
}


#: table -> (its column, the held table and column it must follow): a row whose parent waits waits too.
RELATED = {
    "shop_orders": ("customer_id", "shop_customers", "customer_id"),
    "shop_order_items": ("order_id", "shop_orders", "order_id"),
}


def _waits(table: str, percent: float, seed: int) -> str:
    # hash() is DuckDB's 64-bit hash: a stable, uniform choice of rows for one seed
    key = HOLD_BACK_KEY[table]
    condition = f"hash(coalesce(cast({key} as varchar), '') || ':{seed}') % 10000 < {int(round(percent * 100))}"
    if table in RELATED:
        column, parent, parent_column = RELATED[table]
        condition += f" or {column} in (select {parent_column} from {PENDING_SCHEMA}.{parent})"
    return condition


def hold_back(con: duckdb.DuckDBPyConnection, percent: float, *, seed: int = 0) -> dict[str, int]:
    """Move about ``percent``% of every raw table's rows into schema raw_pending; rows held per table."""
    if not 0 < percent < 100:
        raise ValueError(f"percent must be between 0 and 100 (exclusive), got {percent}")
    missing = sorted(set(RAW_TABLES) - set(HOLD_BACK_KEY))
    if missing:
        raise ValueError(f"no hold-back key for raw table(s) {', '.join(missing)} (cdp/sample_data/increment.py)")
    held: dict[str, int] = {}
    con.execute(f"create schema if not exists {PENDING_SCHEMA}")
    for table in HOLD_BACK_KEY:
        condition = _waits(table, percent, seed)
        con.execute("begin")
        con.execute(
            f"create or replace table {PENDING_SCHEMA}.{table} as select * from {RAW_SCHEMA}.{table} where {condition}"
        )
        con.execute(f"delete from {RAW_SCHEMA}.{table} where {condition}")
        con.execute("commit")
        held[table] = con.execute(f"select count(*) from {PENDING_SCHEMA}.{table}").fetchone()[0]
    return held


def release(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Append every held-back row to its raw table and drop raw_pending; rows released per table."""
    pending = {
        name
        for (name,) in con.execute(
            "select table_name from information_schema.tables where table_schema = ?", [PENDING_SCHEMA]
        ).fetchall()
    }
    if not pending:
        raise ValueError(f"nothing to release: schema {PENDING_SCHEMA} holds no tables (call hold_back first)")
    released: dict[str, int] = {}
    con.execute("begin")
    for table in sorted(pending):
        released[table] = con.execute(f"select count(*) from {PENDING_SCHEMA}.{table}").fetchone()[0]
        con.execute(f"insert into {RAW_SCHEMA}.{table} select * from {PENDING_SCHEMA}.{table}")
    con.execute(f"drop schema {PENDING_SCHEMA} cascade")
    con.execute("commit")
    return released
