"""The tombstone of an identifier: hex sha256 of ``salt:identifier_type:normalised value``.

The same digest as dbt's macro ``tombstone`` (dbt_project/macros/privacy/erasure.sql) on every
engine, with the same salt: dbt var ``privacy_tombstone_salt``, read here from dbt_project.yml and
rendered as dbt renders it (``env_var('CDP_TOMBSTONE_SALT', …)``). tests/test_erasure.py checks
the digest against DuckDB and Postgres.
"""

from __future__ import annotations

import hashlib
import os

import jinja2

from cdp import dbt_vars
from cdp.privacy.identifiers import Identifier

SALT_VAR = "privacy_tombstone_salt"
SALT_ENV_VAR = "CDP_TOMBSTONE_SALT"


def _env_var(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise ValueError(f"dbt var {SALT_VAR} needs the environment variable {name}, which is not set.")
    return value


def tombstone_salt() -> str:
    """The salt, as dbt renders var privacy_tombstone_salt (``--vars`` overrides are not seen)."""
    declared = dbt_vars.project_vars().get(SALT_VAR)
    if not isinstance(declared, str):
        raise ValueError(f"dbt var {SALT_VAR} must be a string (dbt_project.yml)")
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    environment.globals["env_var"] = _env_var
    return environment.from_string(declared).render()


def tombstone(identifier: Identifier, salt: str | None = None) -> str:
    text = f"{tombstone_salt() if salt is None else salt}:{identifier.identifier_type}:{identifier.value}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
