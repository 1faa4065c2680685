"""Table definitions of schemas ``raw`` (the public data contract) and ``ground_truth``.

Raw tables are ``cdp.contract``'s, column for column, plus a few extra columns after
the contract ones. Builders hand over a ``Batch``: staging columns in arrow plus
the SQL select list that turns them into the contract columns, in contract order.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import pyarrow as pa

from cdp.contract import RAW_TABLES as CONTRACT_TABLES
from cdp.sample_data.ids import ID_DIGITS, id_sql

EXTRA_RAW_COLUMNS = MappingProxyType(
    {
        "web_events": (("loaded_at", "timestamp"),),
        "email_events": (("loaded_at", "timestamp"),),
        "pos_transactions": (("loaded_at", "timestamp"),),
        "consent_events": (("consent_id", "varchar"),),
    }
)
"""Columns the generator adds after the contract ones: load times of event streams (for
late-arriving data) and a key for consent events (so ground truth can name each row)."""

RAW_TABLES = MappingProxyType(
    {
        table: (*(tuple(column) for column in columns), *EXTRA_RAW_COLUMNS.get(table, ()))
        for table, columns in CONTRACT_TABLES.items()
    }
)
"""Tables of schema ``raw``: name -> ((column, type), ...), contract order then extras."""

KEYED_TABLES: tuple[str, ...] = tuple(t for t in RAW_TABLES if t != "shop_order_items")
"""Raw tables whose every row is mapped to its person in ground_truth.record_person."""

_GROUND_TRUTH_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "people": (
        ("person_id", "VARCHAR"),
        ("first_name", "VARCHAR"),
        ("last_name", "VARCHAR"),
        ("email", "VARCHAR"),
        ("phone_e164", "VARCHAR"),
        ("country", "VARCHAR"),
        ("persona", "VARCHAR"),
        ("household_id", "VARCHAR"),
        ("previous_email", "VARCHAR"),
    ),
    "record_person": (
        ("source_table", "VARCHAR"),
        ("record_id", "VARCHAR"),
        ("person_id", "VARCHAR"),
    ),
    "noise": (
        ("kind", "VARCHAR"),
        ("source_table", "VARCHAR"),
        ("record_id", "VARCHAR"),
        ("person_id", "VARCHAR"),
        ("detail", "VARCHAR"),
    ),
    "generation_info": (
        ("seed", "BIGINT"),
        ("people", "BIGINT"),
        ("as_of", "TIMESTAMP"),
        ("chunk_size", "BIGINT"),
        ("noise", "VARCHAR"),
        ("history_days", "INTEGER"),
    ),
}

GROUND_TRUTH_TABLES = MappingProxyType(_GROUND_TRUTH_TABLES)

PEOPLE_SELECT = f"""
    {id_sql("person", "person_no")}, first_name, last_name, email, phone_e164, country, persona,
    {id_sql("household", "household_no")}, previous_email
"""
NOISE_SELECT = (
    f"kind, source_table, printf('%s%0{ID_DIGITS}d', prefix, record_no), {id_sql('person', 'person_no')}, detail"
)


@dataclass(frozen=True)
class Batch:
    """Rows for one raw (or ground-truth) table from one chunk.

    ``data`` holds staging columns; ``select`` is the SQL select list (over ``data``)
    that yields the table's columns in order. Keyed raw tables carry ``record_no`` and
    ``person_no`` so the writer can fill ground_truth.record_person from the same batch.
    """

    table: str
    data: pa.Table
    select: str


def create_table_sql(schema: str, table: str, columns: tuple[tuple[str, str], ...]) -> str:
    body = ",\n    ".join(f"{name} {kind}" for name, kind in columns)
    return f"create or replace table {schema}.{table} (\n    {body}\n)"
