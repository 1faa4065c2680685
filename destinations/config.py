"""Named destination connections (destinations.yml) and the connector registry.

A connection is a name, a connector ``type`` and that connector's options. Secrets are
never in the file: a connection names the environment variable holding each secret,
and string values may read the environment with ``${VAR}`` or ``${VAR:-default}``.

``CDP_DESTINATIONS`` points at another file (default: ``<repo>/destinations.yml``).
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cdp.settings import REPO_ROOT
from destinations.base import Destination, DestinationConfigError

DESTINATIONS_ENV_VAR = "CDP_DESTINATIONS"
DEFAULT_DESTINATIONS_FILE = REPO_ROOT / "destinations.yml"

#: connector type -> "module:Class", each a destinations.base.Destination. Adding a platform
#: is adding a line here (and a harness in tests/contract/, or the contract suite fails).
CONNECTORS: dict[str, str] = {
    "klaviyo": "destinations.klaviyo:KlaviyoDestination",
    "webhook": "destinations.webhook:WebhookDestination",
    "mailchimp": "destinations.mailchimp:MailchimpDestination",
    "meta_custom_audience": "destinations.meta:MetaCustomAudienceDestination",
    "google_customer_match": "destinations.google_customer_match:GoogleCustomerMatchDestination",
}

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class DestinationConfig:
    name: str
    type: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def connector_class(self) -> type:
        return connector_class(self.type)

    @property
    def supported_modes(self) -> frozenset[str]:
        return frozenset(self.connector_class.supported_modes)

    @property
    def identifier_names(self) -> frozenset[str]:
        return frozenset(self.connector_class.identifier_names)

    @property
    def key_names(self) -> frozenset[str]:
        return frozenset(self.connector_class.key_names)

    @property
    def accepts_fields(self) -> bool:
        return bool(self.connector_class.accepts_fields)

    @property
    def required_consent_purpose(self) -> str | None:
        """The consent purpose a sync to this destination must filter by (None: any or none).
        A connector that tells its platform every member consented (Google's consent
        fields) declares it, so that statement is always true."""
        return getattr(self.connector_class, "required_consent_purpose", None)

    @property
    def unique_identifiers(self) -> frozenset[str]:
        """Identifiers the platform keeps unique per account (none by default). A value two
        members share would make the platform merge them into one record, so the plan
        withholds it from both (destinations/sql/desired.sql)."""
        return frozenset(getattr(self.connector_class, "unique_identifiers", frozenset()))


def destinations_file() -> Path:
    configured = os.environ.get(DESTINATIONS_ENV_VAR)
    return Path(configured).expanduser().resolve() if configured else DEFAULT_DESTINATIONS_FILE


def load_destinations(path: Path | None = None) -> dict[str, DestinationConfig]:
    """The named connections in ``path`` (default: :func:`destinations_file`)."""
    path = path or destinations_file()
    if not path.exists():
        raise DestinationConfigError(f"destinations file {path} does not exist (set ${DESTINATIONS_ENV_VAR})")
    document = yaml.safe_load(path.read_text()) or {}
    entries = document.get("destinations") if isinstance(document, Mapping) else None
    if not isinstance(entries, Mapping):
        raise DestinationConfigError(f"{path}: expected a top-level 'destinations:' mapping")
    configs: dict[str, DestinationConfig] = {}
    for name, entry in entries.items():
        if not isinstance(entry, Mapping) or not entry.get("type"):
            raise DestinationConfigError(f"{path}: destination '{name}': field 'type' is required")
        kind = str(entry["type"])
        if kind not in CONNECTORS:
            raise DestinationConfigError(
                f"{path}: destination '{name}': field 'type': unknown connector '{kind}' "
                f"(known: {', '.join(sorted(CONNECTORS))})"
            )
        options = {key: value for key, value in entry.items() if key != "type"}
        configs[str(name)] = DestinationConfig(name=str(name), type=kind, options=options)
    return configs


def connector_class(kind: str) -> type[Destination]:
    module_name, class_name = CONNECTORS[kind].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def connect(config: DestinationConfig, *, sync_name: str = "", env: Mapping[str, str] | None = None) -> Destination:
    """A live connector for ``config``; configuration problems raise DestinationConfigError."""
    env = os.environ if env is None else env
    options = {key: expand_env(value, env) for key, value in config.options.items()}
    return config.connector_class.from_config(config.name, options, env, sync_name=sync_name)


def expand_env(value: Any, env: Mapping[str, str]) -> Any:
    """``value`` with every ``${VAR}`` / ``${VAR:-default}`` replaced from ``env`` (non-text as is).

    An unset variable without a default raises DestinationConfigError naming the variable
    (never a value); alerts.yml is read with the same rule (destinations/alerts/config.py)."""
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        variable, default = match.group(1), match.group(2)
        if variable in env:
            return env[variable]
        if default is not None:
            return default
        raise DestinationConfigError(f"environment variable ${variable} is not set")

    return _ENV_REFERENCE.sub(substitute, value)
