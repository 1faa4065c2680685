"""Keep a predictive model's table when nothing it is computed from has changed (DuckDB's dbt Python models).

The fits are deterministic (fixed random_state, single-threaded: see scores.py and clusters.py), so the
same inputs and the same code give the same table. A build that brings nothing new to the feature
sets (a segment edited in the builder, a schedule that found no new rows, a privacy request for a
person with no profile) would refit both models to the same result: about 30 s at 1M people. Instead
each model fingerprints what it reads, and when the fingerprint is the one its table was computed
from, the table is copied as it is.

What the fingerprint covers:

* every input relation, over exactly the columns the model reads: the row count, the names and
  types of the columns, and the sum of a hash of each row (a multiset's fingerprint: the row order
  does not matter, any changed, added or removed row changes it, short of a 64-bit hash collision);
* the code: the text of every module of this package, and the versions of the libraries that fit
  and score (scikit-learn, NumPy, pandas, PyArrow, DuckDB), since a new version may fit differently.

Where it is kept: the bookkeeping table FITTED_INPUTS, one row per model (model, fingerprint,
pending_fingerprint), written in three steps so a build that stops half way never vouches for a table
it did not write (macros/predictive/fitted_inputs.sql has the two hooks):

1. the pre-hook creates the table if missing, and forgets the model's fingerprint on
   `--full-refresh` and when the model's table does not exist (so either always refits);
2. the model compares, then sets ``fingerprint`` NULL and ``pending_fingerprint`` to what it read;
3. the post-hook, which dbt runs only after the new table has replaced the old, moves
   ``pending_fingerprint`` into ``fingerprint``.

A build that fails between 2 and 3 leaves ``fingerprint`` NULL: the next build refits.

On Postgres and Spark the predictive step (step.py) fits every build: it has no such bookkeeping.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from cdp.predictive.inputs import frame, quoted

#: The bookkeeping table, in the model's schema: the same table as cdp.fitted_inputs_relation()
#: (macros/predictive/fitted_inputs.sql, which creates it).
FITTED_INPUTS = "int_predictive__fitted_inputs"
#: Libraries whose version can change a fit or a score.
FITTING_LIBRARIES = ("scikit-learn", "numpy", "pandas", "pyarrow", "duckdb")

Input = tuple[object, Sequence[str]]  # (a DuckDB relation, the columns the model reads)


def code_fingerprint() -> str:
    """The text of this package's modules and the fitting libraries' versions, as one digest."""
    digest = hashlib.sha256()
    for module in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(module.name.encode() + b"\0" + module.read_bytes() + b"\0")
    for library in FITTING_LIBRARIES:
        digest.update(f"{library}=={importlib.metadata.version(library)}\0".encode())
    return digest.hexdigest()


def relation_fingerprint(relation, columns: Sequence[str]) -> str:
    """Row count, column names and types, and the sum of the rows' hashes, of ``columns`` of ``relation``."""
    types = dict(zip(relation.columns, (str(type_) for type_ in relation.types), strict=True))
    missing = [name for name in columns if name not in types]
    if missing:
        raise ValueError(f"the model reads columns {missing} its input does not have (it has {sorted(types)})")
    hashed = ", ".join(quoted(name) for name in columns)
    [(count, hash_sum)] = relation.query(
        "input", f"select count(*), coalesce(sum(hash({hashed})), 0)::varchar from input"
    ).fetchall()
    return f"{count}:{hash_sum}:" + ",".join(f"{name} {types[name]}" for name in columns)


def fingerprint(compute: Callable[..., pd.DataFrame], inputs: Sequence[Input]) -> str:
    """One digest of the code (``compute``'s name among it) and every input."""
    digest = hashlib.sha256(f"{code_fingerprint()}\0{compute.__module__}:{compute.__qualname__}".encode())
    for relation, columns in inputs:
        digest.update(b"\0" + relation_fingerprint(relation, columns).encode())
    return digest.hexdigest()


def computed_unless_unchanged(
    dbt, session, compute: Callable[..., pd.DataFrame], inputs: Sequence[Input]
) -> pd.DataFrame | object:
    """``compute`` over the frames of ``inputs`` (each relation's columns, sorted by profile_id), or the
    model's own table as it stands when it was computed from the same inputs and code (see above)."""
    this = dbt.this
    bookkeeping = f"{quoted(this.database)}.{quoted(this.schema)}.{quoted(FITTED_INPUTS)}"
    current = fingerprint(compute, inputs)
    stored = session.execute(f"select fingerprint from {bookkeeping} where model = ?", [this.identifier]).fetchall()
    unchanged = bool(stored) and stored[0][0] == current

    session.execute("begin transaction")
    session.execute(f"delete from {bookkeeping} where model = ?", [this.identifier])
    session.execute(
        f"insert into {bookkeeping} (model, fingerprint, pending_fingerprint) values (?, null, ?)",
        [this.identifier, current],
    )
    session.execute("commit")

    if unchanged:
        return session.sql(f"select * from {this}")
    return compute(*(frame(relation, columns) for relation, columns in inputs))
