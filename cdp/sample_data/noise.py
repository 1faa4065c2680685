"""The noise ledger: one ground-truth row per injected piece of mess.

Builders call ``NoiseLog.add`` with whole arrays at the moment they inject noise, so
the ledger cannot drift from the raw rows. Tests read ``ground_truth.noise`` to check
the proportions promised by ``NoiseConfig``; the identity team reads it to know which
records were meant to be hard.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from cdp.sample_data.identifiers import (
    EMAIL_CASE_AND_PAD_VARIANT,
    EMAIL_CASE_VARIANTS,
    EMAIL_PAD_VARIANTS,
    PHONE_INTERNATIONAL_VARIANTS,
    PHONE_NATIONAL_VARIANTS,
)
from cdp.sample_data.ids import PREFIX

NOISE_KINDS: tuple[str, ...] = (
    "email_case",
    "email_padding",
    "phone_national_format",
    "phone_international_format",
    "country_variant",
    "duplicate_record",
    "missing_value",
    "junk_email",
    "junk_phone",
    "shared_device",
    "family_phone",
    "email_change",
    "late_event",
)


class NoiseLog:
    """Accumulates noise rows for one chunk; ``to_arrow`` hands them to the writer."""

    def __init__(self) -> None:
        self._parts: list[tuple[str, str, np.ndarray, np.ndarray, str | None]] = []

    def add(
        self, kind: str, table: str, record_no: np.ndarray, person_no: np.ndarray, detail: str | None = None
    ) -> None:
        if kind not in NOISE_KINDS:
            raise ValueError(f"unknown noise kind {kind!r}; add it to NOISE_KINDS")
        if len(record_no) != len(person_no):
            raise ValueError(f"noise {kind} on {table}: {len(record_no)} records but {len(person_no)} people")
        if len(record_no):
            self._parts.append((kind, table, record_no.astype(np.int64), person_no.astype(np.int64), detail))

    def to_arrow(self) -> pa.Table:
        """Columns kind, source_table, prefix, record_no, person_no, detail (see schema.NOISE_SELECT)."""
        counts = np.array([len(p[2]) for p in self._parts], dtype=np.int64)
        part = np.repeat(np.arange(len(self._parts), dtype=np.int32), counts)

        def labels(values: list[str | None]) -> pa.Array:
            missing = np.repeat(np.array([v is None for v in values], dtype=bool), counts)
            dictionary = pa.array([v or "" for v in values], type=pa.string())
            return pa.DictionaryArray.from_arrays(pa.array(part, mask=missing), dictionary)

        empty = np.zeros(0, dtype=np.int64)
        return pa.table(
            {
                "kind": labels([p[0] for p in self._parts]),
                "source_table": labels([p[1] for p in self._parts]),
                "prefix": labels([PREFIX[p[1]] for p in self._parts]),
                "record_no": pa.array(np.concatenate([p[2] for p in self._parts]) if self._parts else empty),
                "person_no": pa.array(np.concatenate([p[3] for p in self._parts]) if self._parts else empty),
                "detail": labels([p[4] for p in self._parts]),
            }
        )


def log_email_spelling(
    log: NoiseLog, table: str, record_no: np.ndarray, person_no: np.ndarray, variant: np.ndarray
) -> None:
    """Ledger rows for records whose email was written in a non-canonical EMAIL_VARIANTS spelling."""
    cased = np.isin(variant, (*EMAIL_CASE_VARIANTS, EMAIL_CASE_AND_PAD_VARIANT))
    padded = np.isin(variant, (*EMAIL_PAD_VARIANTS, EMAIL_CASE_AND_PAD_VARIANT))
    log.add("email_case", table, record_no[cased], person_no[cased])
    log.add("email_padding", table, record_no[padded], person_no[padded])


def log_phone_spelling(
    log: NoiseLog, table: str, record_no: np.ndarray, person_no: np.ndarray, variant: np.ndarray
) -> None:
    """Ledger rows for records whose (genuine) phone is not written in E.164."""
    national = np.isin(variant, PHONE_NATIONAL_VARIANTS)
    international = np.isin(variant, PHONE_INTERNATIONAL_VARIANTS)
    log.add("phone_national_format", table, record_no[national], person_no[national])
    log.add("phone_international_format", table, record_no[international], person_no[international])
