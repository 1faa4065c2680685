"""Arrow columns from Python lists, without pandas.

The sync engine hands the warehouse small relations it built in Python (a window's outcomes,
the suppression list, the erased profiles) as Arrow tables. ``pyarrow.array`` probes every
input for pandas and so imports pandas on first use, which costs a sync run a third of a second
or more (a CLI run, a Dagster step) for a library it never uses. These build the same arrays from
their buffers, which pyarrow takes as they are.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from itertools import accumulate

import pyarrow as pa

#: the most bytes a pa.string() column holds (its offsets are 32-bit)
_MAX_STRING_BYTES = 2**31 - 1


def int64_column(values: Sequence[int]) -> pa.Array:
    """``values`` (no None) as an int64 array."""
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(array("q", values))])


def string_column(values: Sequence[str | None]) -> pa.Array:
    """``values`` (None for null) as a string array."""
    if all(value is None for value in values):
        return pa.nulls(len(values), pa.string())
    encoded = [b"" if value is None else value.encode("utf-8") for value in values]
    offsets = array("i", [0])
    ends = list(accumulate(map(len, encoded)))
    if ends and ends[-1] > _MAX_STRING_BYTES:
        return pa.array(values, pa.string())  # beyond 32-bit offsets: let pyarrow split it
    offsets.extend(ends)
    validity = None
    if None in values:
        bits = bytearray((len(values) + 7) // 8)
        for index, value in enumerate(values):
            if value is not None:
                bits[index >> 3] |= 1 << (index & 7)
        validity = pa.py_buffer(bits)
    return pa.Array.from_buffers(
        pa.string(), len(values), [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    )
