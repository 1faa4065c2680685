"""How the predictive dbt Python models (DuckDB) read their inputs: as pandas frames over Arrow memory.

A relation's ``.df()`` converts every column into new NumPy arrays, and DuckDB's allocator keeps
what the conversion used: at 1M people the two feature tables of int_predictive__predictions
cost about 1.1 GB of the dbt process that way, against 0.6 GB as Arrow (the frames themselves are
0.4 GB). That process is the largest of a build (issue 14: ≤ 3 GB), so the models fetch through
``frame`` instead.

The values are those ``.df()`` gives: DECIMAL columns come as DOUBLE, cast in DuckDB (the same
conversion ``.df()`` makes: bit for bit), integers and booleans as they are, NULL as missing; the
column dtypes are pandas' Arrow dtypes (``int64[pyarrow]`` …), which the fitting code reads
through ``to_numpy``. The predictive step (cdp/predictive/step.py) reads its frames its own way.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def quoted(name: str) -> str:
    """A DuckDB identifier, double-quoted."""
    return '"' + name.replace('"', '""') + '"'


def _expression(name: str, type_name: str) -> str:
    column = quoted(name)
    return f"cast({column} as double) as {column}" if type_name.startswith("DECIMAL") else column


def frame(relation, columns: Sequence[str], order_by: str = "profile_id") -> pd.DataFrame:
    """``columns`` of a DuckDB relation, sorted by ``order_by`` (in DuckDB, which sorts in parallel), as a
    pandas frame over the Arrow result: no copy into NumPy arrays."""
    types = {name: str(type_) for name, type_ in zip(relation.columns, relation.types, strict=True)}
    selected = ", ".join(_expression(name, types[name]) for name in columns)
    query = f"select {selected} from input order by {_expression(order_by, '')}"
    return relation.query("input", query).to_arrow_table().to_pandas(types_mapper=pd.ArrowDtype)
