"""Sync definitions: what analytics engineers write, read back and checked.

A sync is a dbt exposure with a ``meta.sync`` block (see
``dbt_project/models/syncs/_syncs__exposures.yml``): it sits next to the models it reads,
and dbt docs show the lineage from segment to destination. We read the definitions from
dbt's manifest, so whatever dbt parsed is what runs.

Two layers of checks, both naming the sync and the field:

- :func:`load_sync_definitions` checks each definition on its own and against the
  configured destinations (unknown destination, a mode or identifier the destination
  cannot take, bad values) — no warehouse needed;
- :func:`check_against_warehouse` (in ``destinations.plan``) checks what only the
  warehouse knows: the segment exists and every mapped column does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdp.dbt_vars import consent_column as _consent_column
from cdp.dbt_vars import consent_purposes as _consent_purposes
from cdp.experiments import ARM_COLUMN, CONTROL_ARM, Experiment, ExperimentError, load_experiments
from destinations.base import MODES
from destinations.config import DestinationConfig

DEFAULT_MAX_REMOVAL_SHARE = 0.2
#: the audience checks (destinations/audience_checks.py); README "Checks that guard a sync" says why these
DEFAULT_MAX_MISSING_KEY_SHARE = 0.5
DEFAULT_MAX_SHRINK_SHARE = 0.2
DEFAULT_MAX_GROWTH_SHARE = 1.0
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,\-]+$")
#: an owner email Dagster accepts as an asset owner (the same pattern as dagster's own check)
_OWNER_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,7}")
_KNOWN_FIELDS = {
    "segment",
    "destination",
    "mode",
    "key",
    "identifiers",
    "fields",
    "consent_purpose",
    "holdout_percent",
    "experiment",
    "arms",
    "schedule",
    "max_removal_share",
    "max_missing_key_share",
    "max_shrink_share",
    "max_growth_share",
    "paused",
}


class SyncDefinitionError(ValueError):
    """A sync definition is wrong. The message names the sync and the field."""


@dataclass(frozen=True)
class SyncDefinition:
    name: str
    segment: str
    destination: str
    mode: str
    key: str
    #: destination identifier name -> sync_profile_fields column
    identifiers: dict[str, str]
    #: destination field name -> sync_profile_fields column
    fields: dict[str, str] = field(default_factory=dict)
    consent_purpose: str | None = None
    holdout_percent: int = 0
    #: the experiment (var experiments) whose arms this sync sends: control never, the others
    #: as `arms` says (default all); members' arms come from main.experiment_assignments
    experiment: str | None = None
    arms: tuple[str, ...] = ()
    schedule: str | None = None
    max_removal_share: float = DEFAULT_MAX_REMOVAL_SHARE
    #: the audience checks: share of the audience that may lack a usable key, and how far the
    #: audience may shrink or grow against what the destination holds (shares of that)
    max_missing_key_share: float = DEFAULT_MAX_MISSING_KEY_SHARE
    max_shrink_share: float = DEFAULT_MAX_SHRINK_SHARE
    max_growth_share: float = DEFAULT_MAX_GROWTH_SHARE
    #: paused in its definition: runs record `paused` and send nothing (`cdp sync NAME --pause` does the same)
    paused: bool = False
    description: str = ""
    #: the exposure's owner, for people: its name (or, without one, its email)
    owner: str = ""
    #: the exposure's owner.email: the owner Dagster shows on the sync's assets (None: none given)
    owner_email: str | None = None
    #: dbt models the exposure depends on (the segment's model), for lineage
    models: tuple[str, ...] = ()
    #: mapped identifiers other than the key that the destination keeps unique per account: a
    #: value two members share is withheld from both, or the platform would merge them into one
    unique_identifiers: tuple[str, ...] = ()

    @property
    def key_column(self) -> str:
        return self.identifiers[self.key]

    @property
    def consent_column(self) -> str | None:
        """The sync_profile_fields column holding consent for the sync's purpose."""
        return _consent_column(self.consent_purpose) if self.consent_purpose else None

    @property
    def mapped_columns(self) -> list[str]:
        """Every sync_profile_fields column the sync reads (not the arm, which comes from the assignments)."""
        columns = [*self.identifiers.values(), *(c for c in self.fields.values() if c != ARM_COLUMN)]
        return list(dict.fromkeys(columns))

    @property
    def measured_as(self) -> str | None:
        """The experiment whose lift tells what this sync changed (its own name for a holdout), or None."""
        return self.experiment or (self.name if self.holdout_percent else None)


def load_sync_definitions(
    manifest_path: Path, destinations: Mapping[str, DestinationConfig]
) -> dict[str, SyncDefinition]:
    """Every sync in the dbt manifest, checked; raises on the first bad definition.

    All problems of all syncs are collected into one error, so a user fixing a file sees
    everything at once.
    """
    manifest = json.loads(Path(manifest_path).read_text())
    purposes = _consent_purposes()
    try:
        experiments = load_experiments()
    except ExperimentError as error:
        raise SyncDefinitionError(str(error)) from error
    definitions: dict[str, SyncDefinition] = {}
    problems: list[str] = []
    for exposure in sorted(manifest.get("exposures", {}).values(), key=lambda e: e["name"]):
        meta = (exposure.get("config") or {}).get("meta") or exposure.get("meta") or {}
        if "sync" not in meta:
            continue
        try:
            definitions[exposure["name"]] = parse_sync_definition(
                exposure, meta["sync"], destinations, consent_purposes=purposes, experiments=experiments
            )
        except SyncDefinitionError as error:
            problems.append(str(error))
    for sync in definitions.values():
        if sync.holdout_percent and sync.name in experiments:
            problems.append(
                f"sync '{sync.name}': field 'holdout_percent': a holdout is measured as an experiment named after "
                f"its sync, and dbt_project.yml vars.experiments already has an experiment '{sync.name}': rename one"
            )
    if problems:
        raise SyncDefinitionError("\n".join(problems))
    return definitions


def parse_sync_definition(
    exposure: Mapping[str, Any],
    spec: Any,
    destinations: Mapping[str, DestinationConfig],
    *,
    consent_purposes: Sequence[str] | None = None,
    experiments: Mapping[str, Experiment] | None = None,
) -> SyncDefinition:
    """One exposure's ``meta.sync`` block as a SyncDefinition, or a SyncDefinitionError.

    ``consent_purposes`` and ``experiments`` default to the dbt project's vars
    (cdp.dbt_vars.consent_purposes, cdp.experiments.load_experiments; the latter read only when
    the sync names an experiment).
    """
    name = exposure["name"]

    def fail(field_name: str, message: str) -> SyncDefinitionError:
        return SyncDefinitionError(f"sync '{name}': field '{field_name}': {message}")

    if not _NAME.match(name):
        raise fail("name", "must be lower-case letters, digits and underscores, starting with a letter")
    if not isinstance(spec, Mapping):
        raise fail("meta.sync", "must be a mapping of sync settings")
    unknown = sorted(set(spec) - _KNOWN_FIELDS)
    if unknown:
        raise fail(unknown[0], f"is not a sync setting (known: {', '.join(sorted(_KNOWN_FIELDS))})")
    for required in ("segment", "destination", "mode", "key", "identifiers"):
        if spec.get(required) in (None, "", {}):
            raise fail(required, "is required")

    segment = _text(spec["segment"], fail, "segment")
    destination_name = _text(spec["destination"], fail, "destination")
    if destination_name not in destinations:
        known = ", ".join(sorted(destinations)) or "none configured"
        raise fail("destination", f"unknown destination '{destination_name}' (known: {known})")
    destination = destinations[destination_name]

    mode = _text(spec["mode"], fail, "mode")
    if mode not in MODES:
        raise fail("mode", f"'{mode}' is not one of {', '.join(MODES)}")
    if mode not in destination.supported_modes:
        raise fail(
            "mode",
            f"destination '{destination_name}' ({destination.type}) cannot do '{mode}' "
            f"(it supports {', '.join(sorted(destination.supported_modes))})",
        )

    identifiers = _column_mapping(spec["identifiers"], fail, "identifiers")
    not_supported = sorted(set(identifiers) - destination.identifier_names)
    if not_supported:
        raise fail(
            f"identifiers.{not_supported[0]}",
            f"destination '{destination_name}' ({destination.type}) takes identifiers "
            f"{', '.join(sorted(destination.identifier_names))}",
        )
    key = _text(spec["key"], fail, "key")
    if key not in identifiers:
        raise fail("key", f"'{key}' must be one of the mapped identifiers ({', '.join(identifiers)})")
    if key not in destination.key_names:
        raise fail(
            "key",
            f"destination '{destination_name}' ({destination.type}) addresses records by "
            f"{', '.join(sorted(destination.key_names))}, not '{key}'",
        )
    fields = _column_mapping(spec.get("fields") or {}, fail, "fields")
    if fields and not destination.accepts_fields:
        raise fail(
            "fields",
            f"destination '{destination_name}' ({destination.type}) holds people, not fields: map only identifiers",
        )

    consent_purpose = spec.get("consent_purpose")
    if consent_purpose is not None:
        purposes = _consent_purposes() if consent_purposes is None else consent_purposes
        if consent_purpose not in purposes:
            raise fail("consent_purpose", f"'{consent_purpose}' is not one of {', '.join(purposes)}")

    required_purpose = destination.required_consent_purpose
    if required_purpose and consent_purpose != required_purpose:
        raise fail(
            "consent_purpose",
            f"destination '{destination_name}' ({destination.type}) tells the platform that every member it "
            f"sends consented to {required_purpose}: set consent_purpose: {required_purpose}",
        )

    holdout = spec.get("holdout_percent", 0)
    if isinstance(holdout, bool) or not isinstance(holdout, int) or not 0 <= holdout <= 99:
        raise fail("holdout_percent", f"must be a whole number from 0 to 99, got {holdout!r}")

    experiment, arms = _experiment_arms(spec, segment, holdout, fields, experiments, fail)

    share = _share(spec, "max_removal_share", DEFAULT_MAX_REMOVAL_SHARE, fail)
    missing_key_share = _share(spec, "max_missing_key_share", DEFAULT_MAX_MISSING_KEY_SHARE, fail)
    shrink_share = _share(spec, "max_shrink_share", DEFAULT_MAX_SHRINK_SHARE, fail)
    growth_share = spec.get("max_growth_share", DEFAULT_MAX_GROWTH_SHARE)
    if isinstance(growth_share, bool) or not isinstance(growth_share, int | float) or not growth_share > 0:
        raise fail("max_growth_share", f"must be a number above 0 (1 = the audience may double), got {growth_share!r}")

    paused = spec.get("paused", False)
    if not isinstance(paused, bool):
        raise fail("paused", f"must be true or false, got {paused!r}")

    schedule = spec.get("schedule")
    if schedule is not None:
        parts = str(schedule).split()
        if len(parts) != 5 or not all(_CRON_FIELD.match(part) for part in parts):
            raise fail("schedule", f"'{schedule}' is not a 5-field cron expression (e.g. '0 * * * *')")

    owner = exposure.get("owner") or {}
    owner_email = owner.get("email") or None
    if owner_email is not None and not (isinstance(owner_email, str) and _OWNER_EMAIL.fullmatch(owner_email)):
        raise fail("owner.email", f"must be an email address (the owner shown in Dagster), got {owner_email!r}")
    return SyncDefinition(
        name=name,
        segment=segment,
        destination=destination_name,
        mode=mode,
        key=key,
        identifiers=identifiers,
        fields=fields,
        consent_purpose=consent_purpose,
        holdout_percent=holdout,
        experiment=experiment,
        arms=arms,
        schedule=str(schedule) if schedule is not None else None,
        max_removal_share=share,
        max_missing_key_share=missing_key_share,
        max_shrink_share=shrink_share,
        max_growth_share=float(growth_share),
        paused=paused,
        description=exposure.get("description") or "",
        owner=owner.get("name") or owner_email or "",
        owner_email=owner_email,
        models=tuple(node.split(".")[-1] for node in exposure.get("depends_on", {}).get("nodes", [])),
        unique_identifiers=tuple(
            name for name in identifiers if name != key and name in destination.unique_identifiers
        ),
    )


def _experiment_arms(
    spec: Mapping[str, Any],
    segment: str,
    holdout: int,
    fields: Mapping[str, str],
    experiments: Mapping[str, Experiment] | None,
    fail,
) -> tuple[str | None, tuple[str, ...]]:
    """The sync's experiment and the arms it sends, checked against the declared experiments."""
    name = spec.get("experiment")
    if name is None:
        if "arms" in spec:
            raise fail("arms", "names arms of an experiment: set experiment too")
        carrying = sorted(target for target, column in fields.items() if column == ARM_COLUMN)
        if carrying:
            raise fail(f"fields.{carrying[0]}", f"'{ARM_COLUMN}' is the member's experiment arm: set experiment too")
        return None, ()
    name = _text(name, fail, "experiment")
    if holdout:
        raise fail("experiment", "a sync holds people out either by holdout_percent or by an experiment, not both")
    if experiments is None:
        try:
            experiments = load_experiments()
        except ExperimentError as error:
            raise SyncDefinitionError(str(error)) from error
    if name not in experiments:
        known = ", ".join(sorted(experiments)) or "none declared"
        raise fail("experiment", f"unknown experiment '{name}' (dbt_project.yml vars.experiments: {known})")
    experiment = experiments[name]
    if experiment.segment != segment:
        raise fail(
            "experiment",
            f"experiment '{name}' splits segment '{experiment.segment}', but this sync sends '{segment}'",
        )
    arms = spec.get("arms", list(experiment.treatment_arms))
    if isinstance(arms, str):
        arms = [arms]
    if not isinstance(arms, list) or not arms or not all(isinstance(arm, str) for arm in arms):
        raise fail("arms", "must list the arms this sync sends (default: every arm but control)")
    for arm in arms:
        if arm == CONTROL_ARM:
            raise fail("arms", f"'{CONTROL_ARM}' is never sent")
        if arm not in experiment.treatment_arms:
            raise fail("arms", f"experiment '{name}' has no arm '{arm}' (arms: {', '.join(experiment.treatment_arms)})")
    return name, tuple(dict.fromkeys(arms))


def _share(spec: Mapping[str, Any], field_name: str, default: float, fail) -> float:
    """A share setting: a number above 0 and at most 1."""
    share = spec.get(field_name, default)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
        raise fail(field_name, f"must be a number above 0 and at most 1, got {share!r}")
    return float(share)


def _text(value: Any, fail, field_name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise fail(field_name, f"must be a non-empty string, got {value!r}")
    return value.strip()


def _column_mapping(value: Any, fail, field_name: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise fail(field_name, "must map destination names to sync_profile_fields columns")
    mapping: dict[str, str] = {}
    for target, column in value.items():
        if not isinstance(column, str) or not _NAME.match(column):
            raise fail(f"{field_name}.{target}", f"column must be a plain column name, got {column!r}")
        mapping[str(target)] = column
    return mapping
