"""Connector options: declared once per connector as a typed record, parsed by one parser.

A connector declares what its ``destinations.yml`` entry may hold as a frozen dataclass
whose fields are made with :func:`option` (a value) or :func:`secret_option` (the name of
an environment variable holding a secret, the way the Singer SDK flags secrets), and
builds itself from :func:`parse_options`. Every connector's configuration errors then read
the same way, name the destination and the option, and never show a secret:

- an unknown option (a typo) is named, with the known ones (and the closest match);
- a required option that is missing;
- a value of the wrong type, or out of range;
- an environment variable named for a secret that is not set (named, never its value).

``${VAR}`` substitution happens before this, in destinations/config.py, so numbers may
arrive as text; a numeric or boolean string is converted.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from destinations.base import DestinationConfigError

T = TypeVar("T")

#: a custom check: a problem phrased after "option NAME " (e.g. "must be an https URL"), or None
Check = Callable[[Any], str | None]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: text short and plain enough to quote back in an error (a secret or a URL is neither)
_SHORT_WORD = re.compile(r"[\w.\-]{1,20}")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


@dataclass(frozen=True)
class Secret:
    """A secret read from the environment variable an option names. Its value is never shown."""

    env_var: str
    value: str = field(repr=False)

    def __str__(self) -> str:
        return f"${self.env_var}"


@dataclass(frozen=True)
class OptionSpec:
    """What one option is, as the parser sees it (for docs and the connector contract tests)."""

    name: str
    required: bool
    secret: bool
    help: str


def option(
    *,
    help: str,
    default: Any = dataclasses.MISSING,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    check: Check | None = None,
) -> Any:
    """A plain option. No default means required. ``minimum``/``maximum`` bound a number
    inclusively, ``above`` exclusively; ``check`` adds a rule of its own."""
    metadata = {"help": help, "minimum": minimum, "maximum": maximum, "above": above, "check": check}
    return field(default=default, metadata=metadata)


def secret_option(*, help: str, hint: str, required: bool = True) -> Any:
    """An option naming the environment variable that holds a secret. ``hint`` tells the
    user what to export when the variable is not set. An optional one (``required=False``,
    e.g. an app secret only some accounts enforce) is None when the option is left out; when
    it is given, its variable must be set like any other."""
    metadata = {"help": help, "secret": True, "hint": hint}
    return field(metadata=metadata) if required else field(default=None, metadata=metadata)


def option_specs(record_type: type) -> list[OptionSpec]:
    """The options of a connector's record, in declared order."""
    return [
        OptionSpec(
            name=f.name,
            required=f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
            secret=bool(f.metadata.get("secret")),
            help=f.metadata.get("help", ""),
        )
        for f in dataclasses.fields(record_type)
    ]


def parse_options(
    record_type: type[T],
    options: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    label: str,
    connector_type: str,
) -> T:
    """``options`` (a destinations.yml entry, ``${VAR}`` already substituted) as a
    ``record_type``; secrets are read from ``env``. Raises DestinationConfigError naming
    ``label`` (e.g. "webhook destination 'crm'") and the option at fault.

    A ``type`` key is allowed and must be ``connector_type`` (the entry's own kind)."""
    fields_by_name = {f.name: f for f in dataclasses.fields(record_type)}
    _check_keys(options, fields_by_name, label=label, connector_type=connector_type)
    hints = get_type_hints(record_type)
    values: dict[str, Any] = {}
    for name, spec in fields_by_name.items():
        raw = options.get(name)
        if _is_empty(raw):
            if spec.default is dataclasses.MISSING:
                raise DestinationConfigError(f"{label}: option {name} is required ({_expectation(spec, hints[name])})")
            continue  # the record's default
        if spec.metadata.get("secret"):
            values[name] = _secret(name, raw, env, spec, label=label)
        else:
            values[name] = _value(name, raw, spec, hints[name], label=label)
    return record_type(**values)


def check_option(record_type: type, name: str, value: Any, *, label: str) -> Any:
    """One option's value, converted and checked as :func:`parse_options` would (for a
    connector built directly, not from destinations.yml)."""
    spec = {f.name: f for f in dataclasses.fields(record_type)}[name]
    return _value(name, value, spec, get_type_hints(record_type)[name], label=label)


# -- the rules -------------------------------------------------------------------------


def _check_keys(options: Mapping[str, Any], known: Mapping[str, Any], *, label: str, connector_type: str) -> None:
    kind = options.get("type", connector_type)
    if kind != connector_type:
        raise DestinationConfigError(f"{label}: option type is {kind!r}, expected {connector_type!r}")
    unknown = sorted(str(key) for key in options if key != "type" and key not in known)
    if unknown:
        first = unknown[0]
        close = difflib.get_close_matches(first, list(known), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        names = ", ".join(f"'{key}'" for key in unknown)
        raise DestinationConfigError(
            f"{label}: unknown option{'s' if len(unknown) > 1 else ''} {names}{hint} (known: {', '.join(known)})"
        )


def _secret(name: str, raw: Any, env: Mapping[str, str], spec: dataclasses.Field, *, label: str) -> Secret:
    if not isinstance(raw, str) or not _ENV_NAME.fullmatch(raw.strip()):
        # never echo it: a user may have pasted the secret itself here
        raise DestinationConfigError(
            f"{label}: option {name} must name an environment variable (letters, digits and underscores) "
            "that holds the secret, not the secret itself"
        )
    variable = raw.strip()
    value = env.get(variable)
    if not value:
        raise DestinationConfigError(
            f"{label}: environment variable ${variable} (named by option {name}) is not set; {spec.metadata['hint']}"
        )
    return Secret(env_var=variable, value=value)


def _value(name: str, raw: Any, spec: dataclasses.Field, annotation: Any, *, label: str) -> Any:
    """Convert ``raw`` to the annotated type and check its range and custom rule."""
    kind, choices = _kind(annotation)
    value = _convert(raw, kind, choices)
    if value is _INVALID or not _in_range(value, spec):
        raise DestinationConfigError(
            f"{label}: option {name} must be {_expectation(spec, annotation)}, got {_shown(raw)}"
        )
    check = spec.metadata.get("check")
    problem = check(value) if check is not None else None
    if problem:
        raise DestinationConfigError(f"{label}: option {name} {problem}")
    return value


_INVALID = object()


def _kind(annotation: Any) -> tuple[type, tuple[Any, ...]]:
    """(base type, literal choices) of an annotation, ``X | None`` unwrapped."""
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
    if get_origin(annotation) is Literal:
        choices = get_args(annotation)
        return type(choices[0]), choices
    return annotation, ()


def _convert(raw: Any, kind: type, choices: tuple[Any, ...]) -> Any:
    value = raw.strip() if isinstance(raw, str) else raw
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        return _INVALID
    if kind in (int, float):
        if isinstance(value, bool):
            return _INVALID
        if isinstance(value, str):
            try:
                value = kind(value)
            except ValueError:
                return _INVALID
        if kind is int and not isinstance(value, int):
            return _INVALID
        if kind is float and not isinstance(value, int | float):
            return _INVALID
        value = kind(value)
    elif kind is str:
        if not isinstance(value, str) or not value:
            return _INVALID
    elif not isinstance(value, kind):
        return _INVALID
    if choices and value not in choices:
        return _INVALID
    return value


def _in_range(value: Any, spec: dataclasses.Field) -> bool:
    low, high, above = (spec.metadata.get(key) for key in ("minimum", "maximum", "above"))
    return (low is None or value >= low) and (high is None or value <= high) and (above is None or value > above)


def _expectation(spec: dataclasses.Field, annotation: Any) -> str:
    """What a valid value looks like, in words: "an integer from 1 to 10000"."""
    if spec.metadata.get("secret"):
        return "the name of an environment variable holding the secret"
    kind, choices = _kind(annotation)
    if choices:
        return "one of " + ", ".join(repr(choice) for choice in choices)
    noun = {int: "an integer", float: "a number", bool: "true or false", str: "a non-empty string"}.get(
        kind, f"a {kind.__name__}"
    )
    low, high, above = (spec.metadata.get(key) for key in ("minimum", "maximum", "above"))
    if low is not None and high is not None:
        return f"{noun} from {_number(low)} to {_number(high)}"
    bounds = [f"above {_number(above)}"] if above is not None else []
    bounds += [f"at least {_number(low)}"] if low is not None else []
    bounds += [f"at most {_number(high)}"] if high is not None else []
    return f"{noun} {' and '.join(bounds)}" if bounds else noun


def _number(value: float) -> str:
    return f"{value:g}"


def _shown(raw: Any) -> str:
    """The offending value for a message: numbers, booleans and short words as they are;
    long text only by its length (it may be a URL with credentials or a misplaced secret)."""
    if isinstance(raw, bool | int | float):
        return repr(raw)
    if isinstance(raw, str):
        text = raw.strip()
        return repr(text) if _SHORT_WORD.fullmatch(text) else "other text"
    return f"a {type(raw).__name__}"


def _is_empty(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())
