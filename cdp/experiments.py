"""Experiments: declared once, as dbt vars, read by dbt and by the sync engine.

An experiment splits one segment's members into named arms with whole-percent shares (e.g.
control 10 / treatment 90, or control 10 / a 45 / b 45). dbt assigns the arms
(``models/experiments/experiment_assignments.sql``, macros/experiments/) and measures them
(``experiment_lift``); a sync names its experiment (``meta.sync.experiment``) and never sends
the control arm. This module reads the declarations from ``dbt_project/dbt_project.yml``
(``vars: experiments``, ``global_holdout_percent``, ``experiment_outcome_days``) and checks
them, with errors that name the file and the field — dbt itself only sees the values.

How a member gets an arm (the same on DuckDB, Postgres and Spark; tests/test_experiments.py
proves the properties against a reference):

1. ``bucket(experiment || ':' || profile_id) mod 100 < control share`` -> control. The bucket is
   fixed per (experiment, profile), so raising the control share only moves people *into*
   control. A sync's ``holdout_percent: h`` is this step with control = h (and experiment = the
   sync's name): the same rule, which dbt also records as an experiment named after the sync.
2. everyone else: ``bucket(experiment || ':arm:' || profile_id) mod 10000`` against the
   non-control arms' cumulative shares *relative to each other*, in declared order. Scaling the
   non-control arms together (45/45 -> 40/40 while control grows 10 -> 20) moves nobody
   between them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cdp.settings import DBT_PROJECT_DIR

#: the dbt vars this module reads
EXPERIMENTS_VAR = "experiments"
GLOBAL_HOLDOUT_VAR = "global_holdout_percent"
OUTCOME_DAYS_VAR = "experiment_outcome_days"
#: the arm that is never sent, and the experiment name of the global holdout
CONTROL_ARM = "control"
GLOBAL_HOLDOUT = "global_holdout"
#: the pseudo-column a sync's `fields:` may map to carry the member's arm
ARM_COLUMN = "experiment_arm"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_KNOWN_FIELDS = {"segment", "arms", "outcome_days", "description"}


class ExperimentError(ValueError):
    """An experiment declaration is wrong. The message names the file and the field."""


@dataclass(frozen=True)
class Experiment:
    name: str
    segment: str
    #: (arm, share in whole percent), control first, then the others in declared order
    arms: tuple[tuple[str, int], ...]
    #: the outcome window: purchases within this many days of entering the segment
    outcome_days: int
    description: str = ""

    @property
    def control_share(self) -> int:
        return self.arms[0][1]

    @property
    def treatment_arms(self) -> tuple[str, ...]:
        """Every arm but control, in declared order."""
        return tuple(name for name, _ in self.arms[1:])


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key written twice in one mapping (PyYAML keeps the last silently)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ExperimentError(f"{loader.name}: line {key_node.start_mark.line + 1}: '{key}' is written twice")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def _project_vars(project_dir: Path) -> tuple[str, Mapping[str, Any]]:
    path = Path(project_dir) / "dbt_project.yml"
    loader = _UniqueKeyLoader(path.read_text())
    loader.name = str(path)
    try:
        document = loader.get_single_data() or {}
    finally:
        loader.dispose()
    found = document.get("vars") if isinstance(document, Mapping) else None
    return str(path), found if isinstance(found, Mapping) else {}


def load_experiments(project_dir: Path = DBT_PROJECT_DIR) -> dict[str, Experiment]:
    """Every experiment declared in ``vars: experiments``, checked; raises ExperimentError listing every problem."""
    path, project_vars = _project_vars(project_dir)
    default_days = _outcome_days(project_vars.get(OUTCOME_DAYS_VAR, 30), f"{path}: vars.{OUTCOME_DAYS_VAR}")
    global_holdout_percent(project_dir)  # checked with the rest
    declared = project_vars.get(EXPERIMENTS_VAR) or {}
    if not isinstance(declared, Mapping):
        raise ExperimentError(f"{path}: vars.{EXPERIMENTS_VAR}: must map experiment names to their settings")
    experiments: dict[str, Experiment] = {}
    problems: list[str] = []
    for name, spec in declared.items():
        try:
            experiments[str(name)] = parse_experiment(
                str(name), spec, where=f"{path}: vars.{EXPERIMENTS_VAR}.{name}", default_outcome_days=default_days
            )
        except ExperimentError as error:
            problems.append(str(error))
    if problems:
        raise ExperimentError("\n".join(problems))
    return experiments


def parse_experiment(name: str, spec: Any, *, where: str, default_outcome_days: int = 30) -> Experiment:
    """One experiment's settings as an Experiment, or an ExperimentError naming ``where`` and the field."""

    def fail(field_name: str | None, message: str) -> ExperimentError:
        return ExperimentError(f"{where}{'.' + field_name if field_name else ''}: {message}")

    if not _NAME.match(name):
        raise fail(
            None, "an experiment name must be lower-case letters, digits and underscores, starting with a letter"
        )
    if name == GLOBAL_HOLDOUT:
        raise fail(None, f"'{GLOBAL_HOLDOUT}' is the global holdout's name (set vars.{GLOBAL_HOLDOUT_VAR} instead)")
    if not isinstance(spec, Mapping):
        raise fail(None, "must be a mapping with segment and arms")
    unknown = sorted(set(spec) - _KNOWN_FIELDS)
    if unknown:
        raise fail(unknown[0], f"is not an experiment setting (known: {', '.join(sorted(_KNOWN_FIELDS))})")
    segment = spec.get("segment")
    if not isinstance(segment, str) or not segment.strip():
        raise fail("segment", "is required: the segment_name whose members are split into arms")
    arms = spec.get("arms")
    if not isinstance(arms, Mapping) or not arms:
        raise fail("arms", "is required: arm name -> share in whole percent, e.g. {control: 10, treatment: 90}")
    for arm, share in arms.items():
        if not isinstance(arm, str) or not _NAME.match(arm):
            raise fail(f"arms.{arm}", "an arm name must be lower-case letters, digits and underscores")
        if isinstance(share, bool) or not isinstance(share, int) or not 1 <= share <= 99:
            raise fail(f"arms.{arm}", f"a share must be a whole percent from 1 to 99, got {share!r}")
    if CONTROL_ARM not in arms:
        raise fail("arms", f"needs exactly one arm named '{CONTROL_ARM}' (the members never sent)")
    total = sum(arms.values())
    if total != 100:
        raise fail("arms", f"shares must sum to 100, they sum to {total}")
    outcome_days = _outcome_days(spec.get("outcome_days", default_outcome_days), f"{where}.outcome_days")
    ordered = ((CONTROL_ARM, arms[CONTROL_ARM]),) + tuple((a, s) for a, s in arms.items() if a != CONTROL_ARM)
    return Experiment(
        name=name,
        segment=segment.strip(),
        arms=ordered,
        outcome_days=outcome_days,
        description=str(spec.get("description") or ""),
    )


def holdout_experiment(sync_name: str, segment: str, holdout_percent: int, outcome_days: int) -> Experiment:
    """A sync's ``holdout_percent`` as the experiment it is: control = the holdout, named after the sync."""
    return Experiment(
        name=sync_name,
        segment=segment,
        arms=((CONTROL_ARM, holdout_percent), ("treatment", 100 - holdout_percent)),
        outcome_days=outcome_days,
    )


def global_holdout_percent(project_dir: Path = DBT_PROJECT_DIR) -> int:
    """The share of all profiles held out of every sync (0: none)."""
    path, project_vars = _project_vars(project_dir)
    value = project_vars.get(GLOBAL_HOLDOUT_VAR, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 99:
        raise ExperimentError(f"{path}: vars.{GLOBAL_HOLDOUT_VAR}: must be a whole percent from 0 to 99, got {value!r}")
    return value


def default_outcome_days(project_dir: Path = DBT_PROJECT_DIR) -> int:
    path, project_vars = _project_vars(project_dir)
    return _outcome_days(project_vars.get(OUTCOME_DAYS_VAR, 30), f"{path}: vars.{OUTCOME_DAYS_VAR}")


def _outcome_days(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 365:
        raise ExperimentError(
            f"{where}: the outcome window must be a whole number of days from 1 to 365, got {value!r}"
        )
    return value
