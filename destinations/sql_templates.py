"""The engine's SQL files (``destinations/sql/``) and how they are rendered.

The files are Jinja templates, the dbt idiom: only names the code has validated (a sync
name, column names, a schema name, a mode) are rendered into the text; every value is a
bound ``:name`` parameter (destinations.warehouse.base translates it per driver). What one
engine spells differently is a macro of ``sql/_dialect.sql``, rendered for ``dialect``.
"""

from __future__ import annotations

import re
from pathlib import Path

import jinja2

SQL_DIR = Path(__file__).parent / "sql"

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(SQL_DIR), undefined=jinja2.StrictUndefined, autoescape=False
)
#: a statement ends with ";" at the end of a line (no template puts one inside a literal)
_STATEMENT_END = re.compile(r";[ \t]*(?:\n|$)")


def render(name: str, *, dialect: str, **context) -> str:
    """The SQL of template ``name`` for ``dialect`` (duckdb, postgres, spark) with ``context`` rendered in."""
    return _templates.get_template(name).render(context, dialect=dialect)


def dialect_macros(dialect: str):
    """The macros of ``sql/_dialect.sql`` for ``dialect``, callable from Python (tests, benchmarks)."""
    return _templates.get_template("_dialect.sql").make_module({"dialect": dialect})


def statements(name: str, *, dialect: str, **context) -> list[str]:
    """The rendered template split into its statements, for files that hold several."""
    return split_statements(render(name, dialect=dialect, **context))


def split_statements(sql: str) -> list[str]:
    """``sql`` split at each ``;`` that ends a line, without pieces that hold only comments."""
    return [part for part in (piece.strip() for piece in _STATEMENT_END.split(sql)) if _is_code(part)]


def _is_code(sql: str) -> bool:
    """False for a piece that holds only comments and blank lines."""
    return any(line.strip() and not line.strip().startswith("--") for line in sql.splitlines())
