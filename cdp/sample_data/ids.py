"""Record keys: a source prefix plus a zero-padded running number, e.g. ``C0000001234``.

Builders only handle the numbers (int64 columns); DuckDB formats them while inserting,
through ``id_sql``, so every table, foreign key, ground-truth row and noise row spells
an id the same way. Numbers run on across chunks, which keeps keys globally unique.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

ID_DIGITS = 10

PREFIX = MappingProxyType(
    {
        "person": "P",
        "household": "H",
        "crm_contacts": "C",
        "shop_customers": "S",
        "shop_orders": "O",
        "web_events": "W",
        "anonymous_id": "A",
        "email_events": "E",
        "pos_transactions": "R",
        "loyalty_card": "L",
        "support_tickets": "T",
        "consent_events": "K",
        "deletion_requests": "D",
    }
)
"""Id prefix per raw table (its key) and per other numbered thing."""


def id_sql(kind: str, column: str) -> str:
    """SQL expression spelling the number in ``column`` as a ``kind`` id (NULL stays NULL)."""
    return f"printf('{PREFIX[kind]}%0{ID_DIGITS}d', {column})"


def format_id(kind: str, number: int) -> str:
    """The Python twin of ``id_sql`` (for tests and messages)."""
    return f"{PREFIX[kind]}{number:0{ID_DIGITS}d}"


class IdAllocator:
    """Hands out consecutive numbers per kind, continuing across chunks."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def take(self, kind: str, count: int) -> np.ndarray:
        if kind not in PREFIX:
            raise KeyError(f"unknown id kind {kind!r}")
        first = self._next.get(kind, 1)
        self._next[kind] = first + count
        return np.arange(first, first + count, dtype=np.int64)
