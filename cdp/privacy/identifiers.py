"""What `cdp forget IDENTIFIER [--type T]` was given, normalised as staging normalises that kind.

The command has no record around the value (no country for a national phone number), so it asks
for the unambiguous forms: an email address, a phone number in international format, or an id
with its --type. Anything else is refused with what was wrong — never echoing the value, which
is personal data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cdp import dbt_vars

#: identifier types a request may name (the identity graph's node types)
IDENTIFIER_TYPES = ("email", "phone", "customer_id", "loyalty_card_id", "anonymous_id")
_PHONE_SEPARATORS = re.compile(r"[\s().\-/]")
_PHONE_LIKE = re.compile(r"\+?[0-9\s().\-/]+")


class IdentifierError(ValueError):
    """The identifier given to `cdp forget` cannot be used; the message says why (without the value)."""


@dataclass(frozen=True)
class Identifier:
    identifier_type: str
    value: str  # normalised; personal data: never print or log it


def parse_identifier(text: str, identifier_type: str | None = None) -> Identifier:
    """Normalise ``text`` as an identifier of ``identifier_type`` (detected when None)."""
    if identifier_type is not None and identifier_type not in IDENTIFIER_TYPES:
        raise IdentifierError(f"--type must be one of {', '.join(IDENTIFIER_TYPES)}; got {identifier_type!r}.")
    if not text or not text.strip():
        raise IdentifierError("The identifier is empty.")
    kind = identifier_type or detect_type(text)
    if kind == "email":
        return Identifier("email", normalise_email(text))
    if kind == "phone":
        return Identifier("phone", normalise_phone(text))
    return Identifier(kind, text.strip())


def detect_type(text: str) -> str:
    """email when it has an @, phone when it is a number in international form; else ask for --type."""
    stripped = text.strip()
    if "@" in stripped:
        return "email"
    if _PHONE_LIKE.fullmatch(stripped) and (stripped.startswith("+") or stripped.startswith("00")):
        return "phone"
    if _PHONE_LIKE.fullmatch(stripped):
        raise IdentifierError(
            "This looks like a phone number without its country code: write it in international form "
            "(+44 7700 900123, or 0044…), or pass --type customer_id / loyalty_card_id if it is an id."
        )
    raise IdentifierError(
        "Cannot tell which kind of identifier this is (no @ for an email, no +country code for a phone): "
        f"pass --type, one of {', '.join(IDENTIFIER_TYPES)}."
    )


def normalise_email(text: str) -> str:
    """Trimmed and lower-cased, matching var identifier_patterns.email (macro normalise_email)."""
    value = text.strip().lower()
    pattern = dbt_vars.key_pattern("email")
    if value.count("@") != 1:
        raise IdentifierError("Not a valid email address: it must contain exactly one @.")
    if pattern and not re.fullmatch(pattern, value):
        local, _, domain = value.partition("@")
        problem = (
            "the part before the @ is empty"
            if not local
            else (
                "the domain after the @ needs a dot and a top-level domain of 2+ letters (example.com)"
                if "." not in domain
                else "it contains characters an email address cannot have"
            )
        )
        raise IdentifierError(f"Not a valid email address: {problem}.")
    return value


def normalise_phone(text: str) -> str:
    """E.164 from international form: separators dropped, 00 read as +, 8-15 digits (macro normalise_phone)."""
    compact = _PHONE_SEPARATORS.sub("", text.strip().replace("(0)", ""))
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if not compact.startswith("+"):
        raise IdentifierError("A phone number must be in international form: +<country code><number>.")
    if not compact[1:].isdigit():
        raise IdentifierError("A phone number may hold only digits, spaces, dashes, dots and brackets after the +.")
    pattern = dbt_vars.key_pattern("phone")
    if pattern and not re.fullmatch(pattern, compact):
        raise IdentifierError(f"A phone number needs 8 to 15 digits after the +; this one has {len(compact) - 1}.")
    return compact
