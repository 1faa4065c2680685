"""Small numpy idioms the builders share: expanding per-person counts into rows, times.

Every builder works on whole arrays: "each person gets k rows" becomes ``owners(k)``,
"a time inside the person's active window" becomes ``between(...)``. No Python loop
ever runs per person or per event.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

DAY = 86_400
HOUR = 3_600
MINUTE = 60
NULL_NO = -1
"""Stands for NULL in integer id columns until they reach arrow."""


def owners(counts: np.ndarray) -> np.ndarray:
    """Row -> owner index, for owner i repeated counts[i] times."""
    return np.repeat(np.arange(len(counts), dtype=np.int64), counts)


def starts(counts: np.ndarray) -> np.ndarray:
    """Index of each owner's first row in ``owners(counts)``."""
    out = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=out[1:])
    return out


def rank_in_owner(counts: np.ndarray) -> np.ndarray:
    """Row -> 0-based position among its owner's rows."""
    return np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(starts(counts), counts)


def between(rng: np.random.Generator, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Uniform integer seconds in [low, high] (elementwise; high >= low)."""
    span = np.maximum(high - low, 0)
    return low + (rng.random(len(low)) * (span + 1)).astype(np.int64)


def categorical(rng: np.random.Generator, probabilities: np.ndarray | list[float], n: int) -> np.ndarray:
    """n codes drawn with the given probabilities (normalised)."""
    cumulative = np.cumsum(np.asarray(probabilities, dtype=float))
    return np.searchsorted(cumulative / cumulative[-1], rng.random(n), side="right").astype(np.int64)


def group_min(values: np.ndarray, group: np.ndarray, groups: int, empty: int) -> np.ndarray:
    """Minimum of ``values`` per group id in [0, groups); ``empty`` where a group has none."""
    out = np.full(groups, empty, dtype=np.int64)
    np.minimum.at(out, group, values)
    return out


def select_share(rng: np.random.Generator, eligible: np.ndarray, target_count: float) -> np.ndarray:
    """Mask choosing ~target_count of the eligible rows, each with the same probability."""
    available = int(eligible.sum())
    probability = min(1.0, target_count / available) if available else 0.0
    return eligible & (rng.random(len(eligible)) < probability)


def late_arrivals(
    rng: np.random.Generator, occurred: np.ndarray, as_of: int, late_share: float
) -> tuple[np.ndarray, np.ndarray]:
    """(loaded_at, is_late): most rows land within hours; a late share lands 1-10 days later.

    Only rows old enough to be more than a day late without passing ``as_of`` can be late.
    """
    loaded = occurred + (MINUTE // 2 + rng.random(len(occurred)) * 6 * HOUR).astype(np.int64)
    room = as_of - occurred
    late = (rng.random(len(occurred)) < late_share) & (room > 2 * DAY)
    window = np.minimum(room[late], 10 * DAY) - DAY - 1
    loaded[late] = occurred[late] + DAY + 1 + (rng.random(int(late.sum())) * window).astype(np.int64)
    return np.minimum(loaded, as_of), late


def timestamps(seconds: np.ndarray) -> pa.Array:
    """Epoch seconds -> arrow TIMESTAMP (microseconds, naive UTC)."""
    return pa.array(seconds.astype(np.int64) * 1_000_000, type=pa.timestamp("us"))


def nullable(values: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """Integer ids with NULL where ``values == NULL_NO`` (or where ``null`` is set)."""
    mask = values == NULL_NO if null is None else null
    return pa.array(values, mask=mask)


def pick(dictionary: pa.Array, index: np.ndarray) -> pa.Array:
    """Strings by index, NULL where index is NULL_NO. Zero-copy: DuckDB reads it as VARCHAR."""
    indices = pa.array(index.astype(np.int32), mask=index == NULL_NO)
    return pa.DictionaryArray.from_arrays(indices, dictionary)
