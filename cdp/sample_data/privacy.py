"""Consent events and deletion requests: what reverse-ETL syncs must honour.

Consent is recorded against whichever identifier the collecting system knew: an
email (newsletter, ESP opt-outs), a customer_id (cookie banner, account settings) or
a phone (in-store sign-up). Grants come first; some are later revoked, including the
revocations that mirror unsubscribe and complaint events in email_events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from cdp.sample_data.arrays import DAY, HOUR, MINUTE, NULL_NO, between, nullable, pick, timestamps
from cdp.sample_data.campaigns import EmailActivity
from cdp.sample_data.ids import IdAllocator, id_sql
from cdp.sample_data.people import People
from cdp.sample_data.personas import PERSONA_NAMES
from cdp.sample_data.profiles import Profiles
from cdp.sample_data.schema import Batch

IDENTIFIER_TYPES: tuple[str, ...] = ("email", "phone", "customer_id")
EMAIL, PHONE, CUSTOMER_ID = range(len(IDENTIFIER_TYPES))
PURPOSES: tuple[str, ...] = ("email_marketing", "ads_personalization")
EMAIL_MARKETING, ADS = range(len(PURPOSES))
SOURCES: tuple[str, ...] = (
    "newsletter_signup",
    "checkout",
    "store_signup",
    "preference_center",
    "unsubscribe_link",
    "spam_complaint",
    "cookie_banner",
    "account_settings",
    "customer_service",
)
(
    NEWSLETTER_SIGNUP,
    CHECKOUT,
    STORE_SIGNUP,
    PREFERENCE_CENTER,
    UNSUBSCRIBE_LINK,
    SPAM_COMPLAINT,
    COOKIE_BANNER,
    ACCOUNT_SETTINGS,
    CUSTOMER_SERVICE,
) = range(len(SOURCES))
IN_STORE = PERSONA_NAMES.index("in_store")
ADS_CONSENT_ONLINE = 0.55
ADS_CONSENT_IN_STORE = 0.15
ADS_REVOKED = 0.20
DELETION_SHARE = 0.002
"""Of people: sent a deletion (right to be forgotten) request (at least one per chunk)."""
DELETION_WINDOW_DAYS = 60

_VALUE = f"coalesce(email, phone, {id_sql('shop_customers', 'customer_no')})"
CONSENT_SELECT = f"""
    identifier_type, {_VALUE}, purpose, granted, recorded_at, source, {id_sql("consent_events", "record_no")}
"""
DELETION_SELECT = f"{id_sql('deletion_requests', 'record_no')}, identifier_type, {_VALUE}, requested_at"


@dataclass
class _Rows:
    """Column lists of consent rows, appended group by group."""

    owner: list[np.ndarray]
    kind: list[np.ndarray]
    previous_email: list[np.ndarray]
    purpose: list[np.ndarray]
    granted: list[np.ndarray]
    at: list[np.ndarray]
    source: list[np.ndarray]

    def add(
        self,
        owner: np.ndarray,
        kind: int,
        previous_email: np.ndarray | bool,
        purpose: int,
        granted: bool,
        at: np.ndarray,
        source: np.ndarray | int,
    ) -> None:
        n = len(owner)
        self.owner.append(owner)
        self.kind.append(np.full(n, kind))
        self.previous_email.append(np.broadcast_to(previous_email, (n,)).astype(bool))
        self.purpose.append(np.full(n, purpose))
        self.granted.append(np.full(n, granted))
        self.at.append(at)
        self.source.append(np.broadcast_to(source, (n,)).astype(np.int64))

    def column(self, name: str) -> np.ndarray:
        return np.concatenate(getattr(self, name))


def _identifier_columns(
    people: People, profiles: Profiles, owner: np.ndarray, kind: np.ndarray, previous: np.ndarray
) -> dict[str, pa.Array]:
    """email / phone / customer_no columns: exactly one is set per row, per ``kind``."""
    zeros = np.zeros(len(owner), dtype=np.int64)
    email = np.where(kind == EMAIL, people.emails.index(owner, previous, zeros), NULL_NO)
    phone = np.where(kind == PHONE, people.phones.index(owner, zeros), NULL_NO)
    customer = np.where(kind == CUSTOMER_ID, profiles.customer_no[owner], NULL_NO)
    return {
        "identifier_type": pick(pa.array(IDENTIFIER_TYPES), kind),
        "email": pick(people.emails.values, email),
        "phone": pick(people.phones.values, phone),
        "customer_no": nullable(customer),
    }


def build_consent_events(
    rng: np.random.Generator, people: People, profiles: Profiles, email: EmailActivity, ids: IdAllocator, as_of: int
) -> Batch:
    rows = _Rows([], [], [], [], [], [], [])
    changed, change_time = people.email_changed, people.change_time

    subscriber = np.flatnonzero(people.subscriber)
    at = email.subscribed_at[subscriber]
    in_store = people.persona[subscriber] == IN_STORE
    source = np.where(people.has_shop[subscriber], CHECKOUT, np.where(in_store, STORE_SIGNUP, NEWSLETTER_SIGNUP))
    rows.add(subscriber, EMAIL, changed[subscriber] & (at < change_time[subscriber]), EMAIL_MARKETING, True, at, source)

    # A subscriber who changes email confirms the new address in the preference center.
    moved = subscriber[changed[subscriber] & (at < change_time[subscriber])]
    at = change_time[moved] + (rng.random(len(moved)) * DAY).astype(np.int64)
    opted_out = email.opted_out_at[moved]
    moved_ok = (at <= as_of) & ((opted_out == 0) | (opted_out > at))
    rows.add(moved[moved_ok], EMAIL, False, EMAIL_MARKETING, True, at[moved_ok], PREFERENCE_CENTER)

    leavers = np.flatnonzero(email.opted_out_at > 0)
    at = email.opted_out_at[leavers] + MINUTE
    at = np.minimum(at, as_of)
    previous = changed[leavers] & (at < change_time[leavers])
    source = np.where(email.complained[leavers], SPAM_COMPLAINT, UNSUBSCRIBE_LINK)
    rows.add(leavers, EMAIL, previous, EMAIL_MARKETING, False, at, source)

    # Ads personalisation: online by customer id, in store by phone; some revoke later.
    for who, kind, source_granted, source_revoked, share in (
        (np.flatnonzero(people.has_shop), CUSTOMER_ID, COOKIE_BANNER, ACCOUNT_SETTINGS, ADS_CONSENT_ONLINE),
        (
            np.flatnonzero(people.has_crm & profiles.shows_own_phone),
            PHONE,
            STORE_SIGNUP,
            CUSTOMER_SERVICE,
            ADS_CONSENT_IN_STORE,
        ),
    ):
        who = who[rng.random(len(who)) < share]
        granted_at = np.minimum(people.start[who] + (rng.random(len(who)) * 30 * DAY).astype(np.int64), as_of - HOUR)
        rows.add(who, kind, False, ADS, True, granted_at, source_granted)
        revoked = rng.random(len(who)) < ADS_REVOKED
        revoked_at = between(rng, granted_at[revoked] + MINUTE, np.full(int(revoked.sum()), as_of))
        rows.add(who[revoked], kind, False, ADS, False, revoked_at, source_revoked)

    recorded = rows.column("at")
    order = np.argsort(recorded, kind="stable")
    owner, kind = rows.column("owner")[order], rows.column("kind")[order]
    data = pa.table(
        {
            "record_no": pa.array(ids.take("consent_events", len(order))),
            "person_no": pa.array(people.person_no[owner]),
            **_identifier_columns(people, profiles, owner, kind, rows.column("previous_email")[order]),
            "purpose": pick(pa.array(PURPOSES), rows.column("purpose")[order]),
            "granted": pa.array(rows.column("granted")[order]),
            "recorded_at": timestamps(recorded[order]),
            "source": pick(pa.array(SOURCES), rows.column("source")[order]),
        }
    )
    return Batch("consent_events", data, CONSENT_SELECT)


def build_deletion_requests(
    rng: np.random.Generator, people: People, profiles: Profiles, ids: IdAllocator, as_of: int
) -> Batch:
    by_email = people.email_linked()
    by_customer = people.has_shop
    by_phone = profiles.shows_own_phone
    # A fixed share (at least one when anyone is eligible), so even a small demo shows erasure.
    eligible = np.flatnonzero(by_email | by_customer | by_phone)
    wanted = min(len(eligible), max(1, round(DELETION_SHARE * people.n))) if len(eligible) else 0
    requesters = np.sort(rng.choice(eligible, size=wanted, replace=False))
    # Prefer email, then customer id, then phone, but let some use a less obvious one.
    preference = rng.random(len(requesters))
    kind = np.where(by_email[requesters], EMAIL, np.where(by_customer[requesters], CUSTOMER_ID, PHONE))
    use_customer = by_customer[requesters] & (preference < 0.2)
    use_phone = by_phone[requesters] & (preference > 0.9)
    kind = np.where(use_customer, CUSTOMER_ID, np.where(use_phone, PHONE, kind))
    low = np.maximum(people.start[requesters], as_of - DELETION_WINDOW_DAYS * DAY)
    requested_at = between(rng, low, np.full(len(requesters), as_of - MINUTE))
    order = np.argsort(requested_at, kind="stable")
    owner, kind, requested_at = requesters[order], kind[order], requested_at[order]
    data = pa.table(
        {
            "record_no": pa.array(ids.take("deletion_requests", len(owner))),
            "person_no": pa.array(people.person_no[owner]),
            **_identifier_columns(people, profiles, owner, kind, np.zeros(len(owner), dtype=bool)),
            "requested_at": timestamps(requested_at),
        }
    )
    return Batch("deletion_requests", data, DELETION_SELECT)
