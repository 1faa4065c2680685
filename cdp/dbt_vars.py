"""The dbt project's vars (``dbt_project/dbt_project.yml``, ``vars:``) that Python must agree with.

Some rules cross the line between the warehouse and Python: what a valid email or phone
looks like (staging nulls the rest; a sync reports a key that fails it as malformed) and
which consent purposes exist (each a ``has_<purpose>_consent`` column that syncs filter
on). They are declared once, as dbt vars, and read from there by both sides. The file is
read when asked, never at import.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from cdp.settings import DBT_PROJECT_DIR

#: identifier kinds whose format staging checks, and sync keys are checked against
PATTERN_VAR = "identifier_patterns"
#: the consent purposes, each computed into a has_<purpose>_consent column
CONSENT_VAR = "consent_purposes"


def project_vars(project_dir: Path = DBT_PROJECT_DIR) -> dict[str, Any]:
    """The ``vars:`` block of ``dbt_project.yml`` (as written; ``--vars`` overrides are not seen)."""
    path = Path(project_dir) / "dbt_project.yml"
    document = yaml.safe_load(path.read_text()) or {}
    found = document.get("vars") if isinstance(document, Mapping) else None
    if not isinstance(found, Mapping):
        raise ValueError(f"{path}: expected a 'vars:' mapping")
    return dict(found)


def identifier_patterns(project_dir: Path = DBT_PROJECT_DIR) -> dict[str, str]:
    """Identifier kind -> the regular expression a whole normalised value must match."""
    patterns = project_vars(project_dir).get(PATTERN_VAR)
    if not isinstance(patterns, Mapping) or not all(isinstance(p, str) for p in patterns.values()):
        raise ValueError(f"dbt var {PATTERN_VAR} must map identifier kinds to regular expressions")
    return {str(kind): pattern for kind, pattern in patterns.items()}


def key_pattern(identifier: str, project_dir: Path = DBT_PROJECT_DIR) -> str | None:
    """The pattern a sync key of this identifier kind must match, or None when any text will do."""
    return identifier_patterns(project_dir).get(identifier)


def consent_purposes(project_dir: Path = DBT_PROJECT_DIR) -> tuple[str, ...]:
    """Every consent purpose, in declared order."""
    purposes = project_vars(project_dir).get(CONSENT_VAR)
    if not isinstance(purposes, list) or not purposes or not all(isinstance(p, str) for p in purposes):
        raise ValueError(f"dbt var {CONSENT_VAR} must list the consent purposes")
    return tuple(purposes)


def consent_column(purpose: str) -> str:
    """The profile_attributes / sync_profile_fields column holding consent for ``purpose``."""
    return f"has_{purpose}_consent"
