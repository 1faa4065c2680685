"""The dbt target a command runs against: its name, its engine and its connection settings.

``dbt_project/profiles.yml`` is the one place connection settings live. Python that talks to the
warehouse outside dbt (loading raw data, the predictive step, tests) reads the same output, rendered
with the same environment variables, so dbt and Python always point at the same database.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml

from cdp.settings import DBT_PROJECT_DIR, target_name

PROFILE_NAME = "cdp"


class TargetError(ValueError):
    """The target is not an output of profiles.yml, or its settings cannot be rendered."""


@dataclass(frozen=True)
class Target:
    """One output of profiles.yml, rendered: ``engine`` is its dbt adapter type (duckdb, postgres, spark)."""

    name: str
    engine: str
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def schema(self) -> str:
        """The target's own schema: where the public models land (``main``)."""
        return str(self.settings.get("schema", "main"))


def _env_var(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise TargetError(f"profiles.yml needs the environment variable {name}, which is not set.")
    return value


def _as_number(value: str) -> int | float:
    number = float(value)
    return int(number) if number.is_integer() else number


def _render(value: Any, environment: jinja2.Environment) -> Any:
    if isinstance(value, str):
        return environment.from_string(value).render()
    if isinstance(value, dict):
        return {key: _render(item, environment) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, environment) for item in value]
    return value


def load_target(name: str | None = None, profiles_dir: Path | None = None) -> Target:
    """The output ``name`` (default: the current target, CDP_TARGET) of profiles.yml, rendered as dbt would."""
    chosen = name or target_name()
    path = (profiles_dir or DBT_PROJECT_DIR) / "profiles.yml"
    outputs = yaml.safe_load(path.read_text())[PROFILE_NAME]["outputs"]
    if chosen not in outputs:
        raise TargetError(f"Unknown target {chosen!r}: profiles.yml ({path}) defines {', '.join(sorted(outputs))}.")
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    environment.globals["env_var"] = _env_var
    environment.filters["as_number"] = _as_number
    settings = _render(outputs[chosen], environment)
    for key in ("port", "threads"):
        if isinstance(settings.get(key), str):
            settings[key] = _as_number(settings[key])
    return Target(name=chosen, engine=str(settings["type"]), settings=settings)


def target_names(profiles_dir: Path | None = None) -> list[str]:
    """Every output profiles.yml defines."""
    path = (profiles_dir or DBT_PROJECT_DIR) / "profiles.yml"
    return sorted(yaml.safe_load(path.read_text())[PROFILE_NAME]["outputs"])
