"""The global suppression list: what a value becomes before it is kept, and why.

`cdp suppress add|remove|list` keeps emails and phones that no sync ever sends (a complaint,
a legal hold, a "never contact me" by phone). The list lives in the sync state store
(``cdp_sync.suppressions``, destinations/state.py), so it works on every engine, beside the
state it must override. A value is kept only as the SHA-256 of its normalised form:

- the list itself then holds no raw email or phone — it is exactly the kind of table that
  gets exported, screenshotted and shared, and a suppressed person asked to be left alone;
- the plan matches it in SQL where the data lives (destinations/sql/_suppressed.sql hashes
  each profile's ``email`` and ``phone`` the same way), so no raw value crosses engines;
- normalising first (destinations/identifiers.py, the one owner of identifier rules: email
  trimmed and lower-cased, phone in E.164 as staging keeps them) makes " Ada@Example.com "
  and "ada@example.com" one entry.

A plain SHA-256 of an email can be reversed by guessing (hash a list of candidate emails);
it keeps the list from being readable, not from a determined attacker holding the state store.
"""

from __future__ import annotations

from dataclasses import dataclass

from destinations import identifiers

#: the identifier types the list takes
TYPES = ("email", "phone")


class SuppressionError(ValueError):
    """A value that cannot go on the list; the message never quotes it."""


@dataclass(frozen=True)
class SuppressedValue:
    identifier_type: str
    value_sha256: str


def suppressed_value(
    value: str, identifier_type: str | None = None, *, default_region: str | None = None
) -> SuppressedValue:
    """``value`` normalised and hashed for the list; its type detected (an @ makes an email)
    unless given. A value that is no valid email or phone raises SuppressionError."""
    kind = identifier_type or ("email" if "@" in value else "phone")
    if kind not in TYPES:
        raise SuppressionError(f"unknown identifier type '{kind}' (one of: {', '.join(TYPES)})")
    normalised = identifiers.email(value) if kind == "email" else identifiers.e164(value, default_region)
    if normalised is None:
        hint = "" if kind == "email" else " (give it in international form, +<country code>…, or pass --region)"
        raise SuppressionError(f"the value given is not a valid {kind}{hint}")
    return SuppressedValue(kind, identifiers.sha256_hex(normalised))
