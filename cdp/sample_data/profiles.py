"""CRM contacts and shop customers: the profile records, where most identifier mess lives.

Both sources describe a person with email, phone, name and address, so they share one
field builder. The noise injected here (spelling of emails and phones, placeholders,
missing values, duplicates, family phones, old emails) is what staging and identity
resolution must see through.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from cdp.sample_data.arrays import DAY, HOUR, NULL_NO, between, nullable, pick, timestamps
from cdp.sample_data.config import NoiseConfig
from cdp.sample_data.identifiers import (
    COUNTRY_SPELLINGS,
    JUNK_EMAILS,
    JUNK_PHONES,
    country_spellings,
    email_variant,
    phone_variant,
)
from cdp.sample_data.ids import IdAllocator, id_sql
from cdp.sample_data.noise import NoiseLog, log_email_spelling, log_phone_spelling
from cdp.sample_data.people import People
from cdp.sample_data.pools import Pools
from cdp.sample_data.schema import Batch

CRM_SELECT = f"""
    {id_sql("crm_contacts", "record_no")}, email, phone, first_name, last_name, city, country,
    postal_code, birth_date, {id_sql("loyalty_card", "card_no")}, created_at, updated_at
"""
SHOP_SELECT = f"""
    {id_sql("shop_customers", "record_no")}, email, phone, first_name, last_name, city, country,
    postal_code, created_at, updated_at
"""


@dataclass(frozen=True)
class Profiles:
    crm: Batch
    shop: Batch
    customer_no: np.ndarray
    """Per person: their shop customer number, NULL_NO without an account."""
    duplicate_customer_no: np.ndarray
    duplicate_created: np.ndarray
    card_no: np.ndarray
    """Per person: loyalty card number, NULL_NO without one."""
    shows_own_phone: np.ndarray
    """Per person: some CRM/shop record carries their own, unshared, genuine phone, so a
    phone alone (at the till, in a consent) can be linked back to them."""


def _contact_fields(
    rng: np.random.Generator,
    people: People,
    pools: Pools,
    noise: NoiseConfig,
    log: NoiseLog,
    table: str,
    who: np.ndarray,
    record_no: np.ndarray,
    previous_email: np.ndarray,
    no_email: np.ndarray,
) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Columns shared by CRM and shop rows, plus per row: carries a genuine phone."""
    n = len(who)
    person_no = people.person_no[who]

    junk_email = no_email & (rng.random(n) < min(1.0, noise.junk_email * n / max(int(no_email.sum()), 1)))
    variant = email_variant(rng, n, noise.email_case, noise.email_padding)
    variant[no_email] = 0
    email = people.emails.index(who, previous_email, variant)
    email[junk_email] = people.emails.junk_base + rng.integers(0, len(JUNK_EMAILS), int(junk_email.sum()))
    email[no_email & ~junk_email] = NULL_NO
    genuine_email = ~no_email
    log_email_spelling(log, table, record_no[genuine_email], person_no[genuine_email], variant[genuine_email])
    log.add("junk_email", table, record_no[junk_email], person_no[junk_email])
    missing = no_email & ~junk_email
    log.add("missing_value", table, record_no[missing], person_no[missing], "email")
    changed = genuine_email & previous_email
    log.add("email_change", table, record_no[changed], person_no[changed])

    holder = people.phone_holder[who]
    phone_missing = rng.random(n) < noise.missing_phone
    phone_junk = ~phone_missing & (rng.random(n) < noise.junk_phone)
    spelling = phone_variant(rng, n, noise.phone_national_format, noise.phone_international_format)
    phone = people.phones.index(holder, spelling)
    phone[phone_junk] = people.phones.junk_base + rng.integers(0, len(JUNK_PHONES), int(phone_junk.sum()))
    phone[phone_missing] = NULL_NO
    genuine_phone = ~phone_missing & ~phone_junk
    log_phone_spelling(log, table, record_no[genuine_phone], person_no[genuine_phone], spelling[genuine_phone])
    log.add("junk_phone", table, record_no[phone_junk], person_no[phone_junk])
    log.add("missing_value", table, record_no[phone_missing], person_no[phone_missing], "phone")

    name_missing = rng.random(n) < noise.missing_name
    which = rng.random(n)
    first_missing = name_missing & (which < 0.7)
    last_missing = name_missing & (which >= 0.4)
    log.add("missing_value", table, record_no[first_missing], person_no[first_missing], "first_name")
    log.add("missing_value", table, record_no[last_missing], person_no[last_missing], "last_name")
    postal_missing = rng.random(n) < noise.missing_postal_code
    log.add("missing_value", table, record_no[postal_missing], person_no[postal_missing], "postal_code")

    messy_country = rng.random(n) < noise.country_variant
    spelling_no = np.where(messy_country, rng.integers(1, len(COUNTRY_SPELLINGS[0]), n), 0)
    log.add("country_variant", table, record_no[messy_country], person_no[messy_country])

    address = people.address[who]
    columns = {
        "record_no": pa.array(record_no),
        "person_no": pa.array(person_no),
        "email": pick(people.emails.values, email),
        "phone": pick(people.phones.values, phone),
        "first_name": pick(pools.first_names.values, np.where(first_missing, NULL_NO, people.first_name[who])),
        "last_name": pick(pools.last_names.values, np.where(last_missing, NULL_NO, people.last_name[who])),
        "city": pick(pools.cities.values, address),
        "country": pick(country_spellings(), people.country[who] * len(COUNTRY_SPELLINGS[0]) + spelling_no),
        "postal_code": pick(pools.postal_codes, np.where(postal_missing, NULL_NO, address)),
    }
    return columns, genuine_phone


def _log_family_phones(people: People, shown: list[tuple[str, np.ndarray, np.ndarray]], log: NoiseLog) -> np.ndarray:
    """Ledger rows for records carrying a household member's phone, or the holder's own
    phone once a relative's record carries it too; returns shows_own_phone per person."""
    person = np.concatenate([who for _, _, who in shown])
    holder = people.phone_holder[person]
    pairs = np.unique(holder * people.n + person)
    sharers = np.bincount(pairs // people.n, minlength=people.n)
    for table, record_no, who in shown:
        flagged = (people.phone_holder[who] != who) | (sharers[who] >= 2)
        log.add("family_phone", table, record_no[flagged], people.person_no[who[flagged]])
    own = np.zeros(people.n, dtype=bool)
    own[person[holder == person]] = True
    return own & ~people.family_phone


def build_profiles(
    rng: np.random.Generator, people: People, pools: Pools, noise: NoiseConfig, ids: IdAllocator, log: NoiseLog
) -> Profiles:
    shown: list[tuple[str, np.ndarray, np.ndarray]] = []
    """(table, record_no, person) of rows that carry a genuine phone."""

    # CRM: one contact per member, a second one for duplicates; holds the old email of changers.
    primary = np.flatnonzero(people.has_crm)
    duplicate = np.flatnonzero(people.duplicate_crm)
    who = np.concatenate([primary, duplicate])
    is_duplicate = np.arange(len(who)) >= len(primary)
    record_no = ids.take("crm_contacts", len(who))
    log.add("duplicate_record", "crm_contacts", record_no[is_duplicate], people.person_no[who[is_duplicate]])
    columns, with_phone = _contact_fields(
        rng, people, pools, noise, log, "crm_contacts", who, record_no,
        previous_email=people.email_changed[who], no_email=people.declines_email[who],
    )  # fmt: skip
    shown.append(("crm_contacts", record_no[with_phone], who[with_phone]))
    card_no = np.full(people.n, NULL_NO, dtype=np.int64)
    card_no[people.has_card] = ids.take("loyalty_card", int(people.has_card.sum()))
    created = np.where(
        is_duplicate,
        between(rng, people.start[who], people.end[who]),
        people.start[who] - (rng.random(len(who)) * 30 * DAY).astype(np.int64),
    )
    crm = pa.table(
        {
            **columns,
            "birth_date": pa.array(people.birth_day[who].astype(np.int32), type=pa.date32()),
            "card_no": nullable(np.where(is_duplicate, NULL_NO, card_no[who])),
            "created_at": timestamps(created),
            "updated_at": timestamps(between(rng, created, people.end[who])),
        }
    )

    # Shop: one account per customer, a second one for duplicates; always the current email.
    primary = np.flatnonzero(people.has_shop)
    duplicate = np.flatnonzero(people.duplicate_shop)
    who = np.concatenate([primary, duplicate])
    is_duplicate = np.arange(len(who)) >= len(primary)
    record_no = ids.take("shop_customers", len(who))
    log.add("duplicate_record", "shop_customers", record_no[is_duplicate], people.person_no[who[is_duplicate]])
    columns, with_phone = _contact_fields(
        rng, people, pools, noise, log, "shop_customers", who, record_no,
        previous_email=np.zeros(len(who), dtype=bool), no_email=np.zeros(len(who), dtype=bool),
    )  # fmt: skip
    shown.append(("shop_customers", record_no[with_phone], who[with_phone]))
    created = np.where(
        is_duplicate,
        between(rng, people.start[who], people.end[who]),
        people.start[who] - 2 * HOUR - (rng.random(len(who)) * DAY).astype(np.int64),  # before any login
    )
    updated_from = np.where(people.email_changed[who] & ~is_duplicate, people.change_time[who], created)
    shop = pa.table(
        {
            **columns,
            "created_at": timestamps(created),
            "updated_at": timestamps(between(rng, updated_from, people.end[who])),
        }
    )
    customer_no = np.full(people.n, NULL_NO, dtype=np.int64)
    customer_no[primary] = record_no[~is_duplicate]
    duplicate_customer_no = np.full(people.n, NULL_NO, dtype=np.int64)
    duplicate_customer_no[duplicate] = record_no[is_duplicate]
    duplicate_created = np.zeros(people.n, dtype=np.int64)
    duplicate_created[duplicate] = created[is_duplicate]

    return Profiles(
        shows_own_phone=_log_family_phones(people, shown, log),
        crm=Batch("crm_contacts", crm, CRM_SELECT),
        shop=Batch("shop_customers", shop, SHOP_SELECT),
        customer_no=customer_no,
        duplicate_customer_no=duplicate_customer_no,
        duplicate_created=duplicate_created,
        card_no=card_no,
    )
