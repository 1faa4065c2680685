"""alerts.yml: the channels alerts go to and the rules that raise them.

```yaml
channels:
  team_slack:                         # a Slack-compatible incoming webhook
    type: slack
    url: ${SLACK_ALERTS_WEBHOOK_URL}  # the hook URL is a secret: read it from the environment
  ops_webhook:                        # a generic webhook, signed the Standard Webhooks way
    type: webhook
    url: https://ops.example.com/cdp-alerts
    secret_env: OPS_ALERTS_SECRET     # the environment variable holding its whsec_ secret
rules:
  sync_failed:
    kind: run_failed                  # the kinds: destinations/alerts/rules.py RULE_KINDS
    channels: [team_slack]            # optional: default every channel
    syncs: [champions_to_webhook]     # optional: default every sync (`segments:` for segment rules)
    notify_resolved: true             # optional: say so when the condition clears (default true)
```

The file is ``<repo>/alerts.yml`` unless ``CDP_ALERTS`` names another; no file means no
alerts, and ``CDP_ALERTS=off`` turns them off. Values may read the environment with
``${VAR}`` / ``${VAR:-default}`` (destinations.config.expand_env, as destinations.yml does);
channel options and thresholds are parsed by the shared option parser
(destinations/options.py). Every problem is an :class:`AlertConfigError` naming the file,
the rule or channel and the field — never a secret or a URL.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cdp.settings import REPO_ROOT
from destinations.alerts.channels import CHANNEL_TYPES, Channel, WebhookChannelOptions
from destinations.alerts.rules import RULE_KINDS, SEGMENT_SCOPE, SYNC_SCOPE, Rule
from destinations.base import DestinationConfigError
from destinations.config import expand_env
from destinations.options import parse_options
from destinations.webhook import decode_secret

ALERTS_ENV_VAR = "CDP_ALERTS"
DEFAULT_ALERTS_FILE = REPO_ROOT / "alerts.yml"
#: the value of CDP_ALERTS that turns alerts off
ALERTS_OFF = "off"

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,62}$")
_TOP_LEVEL = ("channels", "rules")


class AlertConfigError(ValueError):
    """alerts.yml is wrong. The message names the file, the rule or channel and the field."""


@dataclass(frozen=True)
class ChannelConfig:
    name: str
    type: str
    #: the type's options record (SlackOptions, WebhookChannelOptions), secrets read
    options: Any = field(repr=False)

    def connect(self, **tuning: Any) -> Channel:
        """A live channel (an HTTP session; close it when done)."""
        return CHANNEL_TYPES[self.type][1](self.name, self.options, **tuning)


@dataclass(frozen=True)
class AlertConfig:
    """The parsed file: channels and rules by name (both empty when alerts are off)."""

    path: Path | None = None
    channels: dict[str, ChannelConfig] = field(default_factory=dict)
    rules: dict[str, Rule] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return bool(self.rules)

    def check_syncs(self, known: Iterable[str]) -> None:
        """Refuse a rule that watches a sync no definition has: it would never fire."""
        known = sorted(known)
        for rule in self.rules.values():
            if rule.scope != SYNC_SCOPE:
                continue
            for name in rule.subjects:
                if name not in known:
                    raise AlertConfigError(
                        f"{self.path}: rule '{rule.name}': field 'syncs': no sync named '{name}'{_suggest(name, known)}"
                    )


def alerts_file(env: Mapping[str, str] | None = None) -> Path | None:
    """The alerts file in use: ``CDP_ALERTS``, else ``<repo>/alerts.yml`` if it exists; None for none.

    A file that ``CDP_ALERTS`` names must exist (a typo must not silently turn alerts off).
    """
    env = os.environ if env is None else env
    configured = env.get(ALERTS_ENV_VAR, "").strip()
    if configured.lower() == ALERTS_OFF:
        return None
    if configured:
        path = Path(configured).expanduser().resolve()
        if not path.is_file():
            raise AlertConfigError(
                f"alerts file {path} (named by ${ALERTS_ENV_VAR}) does not exist; "
                f"set ${ALERTS_ENV_VAR}={ALERTS_OFF} to turn alerts off"
            )
        return path
    return DEFAULT_ALERTS_FILE if DEFAULT_ALERTS_FILE.is_file() else None


def load_alerts(path: Path | None = None, env: Mapping[str, str] | None = None) -> AlertConfig:
    """The alert configuration in ``path`` (default: :func:`alerts_file`); secrets from ``env``."""
    env = os.environ if env is None else env
    path = alerts_file(env) if path is None else path
    if path is None:
        return AlertConfig()
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise AlertConfigError(f"{path}: not valid YAML{where}") from None
    if not isinstance(document, Mapping):
        raise AlertConfigError(f"{path}: expected a mapping with 'channels:' and 'rules:'")
    _refuse_unknown(str(path), document, _TOP_LEVEL)
    channels = _channels(path, document.get("channels") or {}, env)
    rules = _rules(path, document.get("rules") or {}, channels, env)
    return AlertConfig(path=path, channels=channels, rules=rules)


# -- channels ----------------------------------------------------------------------------------


def _channels(path: Path, entries: Any, env: Mapping[str, str]) -> dict[str, ChannelConfig]:
    if not isinstance(entries, Mapping):
        raise AlertConfigError(f"{path}: 'channels' must be a mapping of channel name to its settings")
    channels = {}
    for name, entry in entries.items():
        label = f"{path}: channel '{name}'"
        _check_name(label, name)
        if not isinstance(entry, Mapping) or not entry.get("type"):
            raise AlertConfigError(f"{label}: field 'type' is required ({_known(CHANNEL_TYPES)})")
        kind = str(entry["type"])
        if kind not in CHANNEL_TYPES:
            raise AlertConfigError(
                f"{label}: field 'type': unknown channel type '{kind}'{_suggest(kind, CHANNEL_TYPES)}"
            )
        options_type = CHANNEL_TYPES[kind][0]
        values = {key: _expanded(label, key, value, env) for key, value in entry.items()}
        options = _parse(options_type, values, env, label=label, kind=kind)
        if isinstance(options, WebhookChannelOptions):
            try:
                decode_secret(options.secret_env.value)
            except ValueError:
                raise AlertConfigError(
                    f"{label}: field 'secret_env': the secret in ${options.secret_env.env_var} "
                    "is not of the form whsec_<base64>"
                ) from None
        channels[str(name)] = ChannelConfig(name=str(name), type=kind, options=options)
    return channels


def _expanded(label: str, key: Any, value: Any, env: Mapping[str, str]) -> Any:
    try:
        return expand_env(value, env)
    except DestinationConfigError as error:  # "environment variable $X is not set": a name, never a value
        raise AlertConfigError(f"{label}: field '{key}': {error}") from None


# -- rules -------------------------------------------------------------------------------------


def _rules(path: Path, entries: Any, channels: Mapping[str, ChannelConfig], env: Mapping[str, str]) -> dict[str, Rule]:
    if not isinstance(entries, Mapping):
        raise AlertConfigError(f"{path}: 'rules' must be a mapping of rule name to its settings")
    if entries and not channels:
        raise AlertConfigError(f"{path}: rules need at least one channel under 'channels:'")
    rules = {}
    for name, entry in entries.items():
        label = f"{path}: rule '{name}'"
        _check_name(label, name)
        if not isinstance(entry, Mapping) or not entry.get("kind"):
            raise AlertConfigError(f"{label}: field 'kind' is required ({_known(RULE_KINDS)})")
        kind_name = str(entry["kind"])
        if kind_name not in RULE_KINDS:
            raise AlertConfigError(
                f"{label}: field 'kind': unknown rule kind '{kind_name}'{_suggest(kind_name, RULE_KINDS)}"
            )
        kind = RULE_KINDS[kind_name]
        subjects_key = "segments" if kind.scope == SEGMENT_SCOPE else "syncs"
        wrong_key = "syncs" if subjects_key == "segments" else "segments"
        if wrong_key in entry:
            raise AlertConfigError(
                f"{label}: field '{wrong_key}': a {kind_name} rule watches {subjects_key}; use '{subjects_key}:'"
            )
        threshold_names = tuple(f.name for f in dataclasses.fields(kind.options_type))
        _refuse_unknown(label, entry, ("kind", "channels", subjects_key, "notify_resolved", *threshold_names))
        thresholds = {key: _expanded(label, key, value, env) for key, value in entry.items() if key in threshold_names}
        rules[str(name)] = Rule(
            name=str(name),
            kind=kind_name,
            options=_parse(kind.options_type, thresholds, {}, label=label, kind=kind_name),
            channels=_rule_channels(label, entry.get("channels"), channels),
            subjects=_names(label, subjects_key, entry.get(subjects_key)),
            notify_resolved=_flag(label, "notify_resolved", entry.get("notify_resolved", True)),
        )
    return rules


def _rule_channels(label: str, value: Any, channels: Mapping[str, ChannelConfig]) -> tuple[str, ...]:
    if value is None:
        return tuple(channels)
    names = _names(label, "channels", value)
    if not names:
        raise AlertConfigError(f"{label}: field 'channels' must name at least one channel (or be left out: all)")
    for name in names:
        if name not in channels:
            raise AlertConfigError(
                f"{label}: field 'channels': no channel named '{name}'{_suggest(name, channels)} under 'channels:'"
            )
    return names


def _names(label: str, key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise AlertConfigError(f"{label}: field '{key}' must be a list of names")
    return tuple(dict.fromkeys(item.strip() for item in value))


def _flag(label: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise AlertConfigError(f"{label}: field '{key}' must be true or false")
    return value


# -- shared ------------------------------------------------------------------------------------


def _parse(record_type: type, values: Mapping[str, Any], env: Mapping[str, str], *, label: str, kind: str) -> Any:
    """The shared option parser's record, its errors re-worded for this file ("field", not "option")."""
    try:
        return parse_options(record_type, values, env, label=label, connector_type=kind)
    except DestinationConfigError as error:
        message = str(error)
        if "unknown option" in message:
            message = message.replace("unknown options", "unknown fields").replace("unknown option", "unknown field")
        else:
            message = re.sub(r"\boption (\w+)", r"field '\1'", message)
        raise AlertConfigError(message) from None


def _refuse_unknown(label: str, entry: Mapping[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(str(key) for key in entry if key not in known)
    if unknown:
        raise AlertConfigError(f"{label}: unknown field '{unknown[0]}'{_suggest(unknown[0], known)}")


def _check_name(label: str, name: Any) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise AlertConfigError(f"{label}: a name must be letters, digits, '_' or '-', starting with a letter")


def _suggest(word: str, known: Any) -> str:
    names = list(known)
    close = difflib.get_close_matches(word, names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"{hint} (known: {', '.join(names) or 'none'})"


def _known(names: Any) -> str:
    return "one of " + ", ".join(names)
