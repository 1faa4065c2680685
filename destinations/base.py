"""The one small interface between the sync engine and a destination.

The engine knows nothing platform-specific. It hands a connector a batch of
:class:`Change` records (at most ``batch_size``) and expects one :class:`Outcome` per
change back. A connector:

- is built by ``from_config(name, options, env, sync_name=...)`` from its named
  connection in destinations.yml; its options are one typed record (``options_type``)
  read by the shared parser in destinations/options.py, secrets from the environment;

- speaks the platform's real HTTP API (only the base URL differs in tests);
- retries transient trouble itself (429 with Retry-After, 5xx, timeouts) within a
  bounded budget, then raises :class:`DestinationUnavailable` — the engine records
  the whole batch as failed and stops the run; the records are planned again next run;
- reports per-record results, including failures the platform reports inside a 2xx
  body, as ``failed`` (worth retrying next run) or ``rejected`` (the platform will not
  take this record as it is; not retried until its payload changes);
- may name the platform's own id for a confirmed record (``Outcome.destination_id``, e.g.
  a Klaviyo profile id): the engine keeps it in ``cdp_sync.state`` and hands it back on
  the record's later changes (``Change.destination_id``), so it is resolved once;
- reports the platform's own acceptance or match figures for the run so far
  (``report()``: Meta's invalid entries, Klaviyo's job counts, a Data Manager request's
  status), which the engine stores with the run;
- never puts raw personal data into exceptions or error strings;
- may offer ``forget(changes)``: the platform's strongest removal of people a privacy request
  erased (Mailchimp's permanent delete, Klaviyo's data privacy deletion job, a webhook
  ``forget`` event). A connector without it gets a plain removal (:func:`forget_records`):
  for an ad audience, leaving the audience is all the platform offers. A forget outcome may
  carry the platform's acknowledgement (``Outcome.answer``: status codes and ids only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

Operation = Literal["upsert", "remove", "forget"]
OutcomeStatus = Literal["confirmed", "failed", "rejected"]

#: Sync modes, and the operations each may send.
MODES: dict[str, frozenset[str]] = {
    "mirror": frozenset({"add", "update", "remove"}),
    "upsert": frozenset({"add", "update"}),
    "add_only": frozenset({"add"}),
}


@dataclass(frozen=True)
class Change:
    """One record change to deliver.

    ``change_id`` is stable for the same (sync, key, operation, payload), so a re-send
    after a crash carries the same id and a receiver can de-duplicate it.
    ``identifiers`` are the mapped identifier values (email, phone, …) already
    normalised by the warehouse; connectors hash them where the platform requires.
    ``fields`` are the mapped, non-identifying fields. Both are empty for removals
    except for what the destination needs to address the record.
    """

    change_id: str
    op: Operation
    key: str
    identifiers: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    #: the platform's id for this record, as a connector reported it when it was confirmed
    destination_id: str | None = None


@dataclass(frozen=True)
class Outcome:
    change_id: str
    status: OutcomeStatus
    #: the destination's own error, with personal data removed; None when confirmed
    error: str | None = None
    #: the platform's id for the record (kept in cdp_sync.state, handed back on its next change)
    destination_id: str | None = None
    #: the platform's acknowledgement of a forget ("HTTP 204", "HTTP 202 deletion job"): codes and
    #: ids only, never personal data; kept in the privacy receipt
    answer: str | None = None


class DestinationError(Exception):
    """Base class: a destination problem, described without personal data."""


class DestinationUnavailable(DestinationError):
    """The destination could not take the batch (down, throttled past the retry budget,
    timing out). Nothing in the batch is known to have been applied."""


class DestinationConfigError(DestinationError):
    """The destination is misconfigured (bad credentials, unknown list, missing secret)."""


def refuse_oversized_batch(label: str, changes: Sequence[Change], batch_size: int) -> None:
    """What every connector's ``send`` does first: more than ``batch_size`` changes is the
    engine's bug, refused before anything is sent."""
    if len(changes) > batch_size:
        raise ValueError(
            f"{label}: {len(changes)} changes exceed batch_size {batch_size}; the engine must split batches"
        )


@runtime_checkable
class Destination(Protocol):
    """What the engine needs from a connector. Every connector in
    destinations.config.CONNECTORS runs the contract tests in tests/contract/."""

    #: the most changes one ``send`` call accepts (the platform's batch limit)
    batch_size: int
    #: the sync modes this destination can honour (a subset of MODES)
    supported_modes: frozenset[str]
    #: identifier names a sync may map for this destination (e.g. {"email", "phone"})
    identifier_names: frozenset[str]
    #: identifiers that can address a record there (a sync's ``key`` is one of them)
    key_names: frozenset[str]
    #: whether the platform stores fields beside the identifiers (an ad audience does not)
    accepts_fields: bool
    #: the frozen dataclass declaring the connection's options (destinations/options.py)
    options_type: type

    @classmethod
    def from_config(
        cls, name: str, options: Mapping[str, Any], env: Mapping[str, str], *, sync_name: str = ""
    ) -> Destination:
        """A connector for the named connection ``name`` of destinations.yml, delivering
        for the sync ``sync_name``. ``options`` are the entry's values with ``${VAR}``
        already substituted; secrets are read from ``env``. Configuration problems raise
        DestinationConfigError naming ``name`` and the option, never a secret."""
        ...

    def send(self, changes: list[Change]) -> list[Outcome]:
        """Deliver ``changes`` (len ≤ batch_size); return one outcome per change."""
        ...

    def report(self) -> Mapping[str, int | float | str]:
        """The platform's own figures for what this connector sent so far (name -> value;
        counts and statuses, never personal data); empty when the platform gives none."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def forget_records(destination: Destination, changes: list[Change]) -> list[Outcome]:
    """The strongest removal ``destination`` offers for ``changes`` (len ≤ batch_size): its
    ``forget`` where it has one, else a plain removal through ``send``."""
    forget = getattr(destination, "forget", None)
    if callable(forget):
        return list(forget(changes))
    removals = [
        Change(change.change_id, "remove", change.key, change.identifiers, {}, change.destination_id)
        for change in changes
    ]
    return [
        outcome if outcome.status != "confirmed" or outcome.answer else replace(outcome, answer="removed")
        for outcome in destination.send(removals)
    ]
