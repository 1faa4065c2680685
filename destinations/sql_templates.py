"""The engine's SQL files (``destinations/sql/``) and how they are run.

The files are Jinja templates, the dbt idiom: only names the code has validated (a sync
name, column names, a schema name, a mode) are rendered into the text; every value is a
bound ``$name`` parameter.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import jinja2

SQL_DIR = Path(__file__).parent / "sql"

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(SQL_DIR), undefined=jinja2.StrictUndefined, autoescape=False
)
_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
#: a statement ends with ";" at the end of a line (no template puts one inside a literal)
_STATEMENT_END = re.compile(r";[ \t]*(?:\n|$)")


def render(name: str, **context) -> str:
    """The SQL of template ``name`` with ``context`` rendered in."""
    return _templates.get_template(name).render(context)


def statements(name: str, **context) -> list[str]:
    """The rendered template split into its statements, for files that hold several."""
    return [sql for sql in (part.strip() for part in _STATEMENT_END.split(render(name, **context))) if _is_code(sql)]


def execute_bound(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> duckdb.DuckDBPyConnection:
    """Execute with named parameters, binding only those the statement uses (DuckDB
    refuses extras, and a template may leave some out)."""
    used = set(_PARAMETER.findall(sql))
    return con.execute(sql, {name: value for name, value in params.items() if name in used})


def _is_code(sql: str) -> bool:
    """False for a piece that holds only comments and blank lines."""
    return any(line.strip() and not line.strip().startswith("--") for line in sql.splitlines())
