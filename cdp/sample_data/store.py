"""In-store purchases at the till, keyed by loyalty card and/or phone, or by nothing.

Most card holders scan their card (some also give a phone); people without a card
give the phone that is on their CRM/shop record; a small share pay anonymously. When a
clerk must type a phone for a card-only sale they sometimes type a placeholder.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from cdp.sample_data.arrays import NULL_NO, between, late_arrivals, nullable, owners, pick, select_share, timestamps
from cdp.sample_data.catalogue import STORES_PER_COUNTRY, Catalogue
from cdp.sample_data.config import NoiseConfig
from cdp.sample_data.identifiers import JUNK_PHONES, phone_variant
from cdp.sample_data.ids import IdAllocator, id_sql
from cdp.sample_data.noise import NoiseLog, log_phone_spelling
from cdp.sample_data.people import People
from cdp.sample_data.personas import persona_column
from cdp.sample_data.profiles import Profiles
from cdp.sample_data.schema import Batch

CARD_SCANNED = 0.95
"""P(a card holder's sale carries the card)."""
CARD_AND_PHONE = 0.20
"""P(a scanned sale also carries the phone)."""
PHONE_GIVEN = 0.85
"""P(a sale without card carries the phone, when the person has a linkable phone)."""
BASKET_MEDIAN_CENTS = 4_500

POS_SELECT = f"""
    {id_sql("pos_transactions", "record_no")}, store_id, {id_sql("loyalty_card", "card_no")}, phone,
    (amount_cents * 0.01)::decimal(12,2), occurred_at, loaded_at
"""


def build_pos_transactions(
    rng: np.random.Generator,
    people: People,
    profiles: Profiles,
    catalogue: Catalogue,
    noise: NoiseConfig,
    ids: IdAllocator,
    log: NoiseLog,
    as_of: int,
) -> Batch:
    shoppers = people.has_crm | people.has_shop
    counts = rng.poisson(persona_column("pos_visits")[people.persona]) * shoppers
    owner = owners(counts)
    n = len(owner)
    occurred = between(rng, people.start[owner], people.end[owner])
    order = np.argsort(occurred, kind="stable")
    owner, occurred = owner[order], occurred[order]

    card = profiles.card_no[owner]
    own_phone = profiles.shows_own_phone[owner]
    u = rng.random(n)
    with_card = (card != NULL_NO) & (u < CARD_SCANNED)
    card_and_phone = with_card & (u < CARD_AND_PHONE * CARD_SCANNED) & own_phone
    phone_only = (card == NULL_NO) & own_phone & (u < PHONE_GIVEN)
    with_phone = card_and_phone | phone_only
    card_only = with_card & ~card_and_phone
    junk = select_share(rng, card_only, noise.junk_phone * with_phone.sum() / (1.0 - noise.junk_phone))

    spelling = phone_variant(rng, n, noise.phone_national_format, noise.phone_international_format)
    phone = np.where(with_phone, people.phones.index(owner, spelling), NULL_NO)
    phone[junk] = people.phones.junk_base + rng.integers(0, len(JUNK_PHONES), int(junk.sum()))

    record_no = ids.take("pos_transactions", n)
    person_no = people.person_no[owner]
    log_phone_spelling(log, "pos_transactions", record_no[with_phone], person_no[with_phone], spelling[with_phone])
    log.add("junk_phone", "pos_transactions", record_no[junk], person_no[junk])
    loaded, late = late_arrivals(rng, occurred, as_of, noise.late_event)
    log.add("late_event", "pos_transactions", record_no[late], person_no[late])

    amount = np.maximum(np.exp(rng.normal(np.log(BASKET_MEDIAN_CENTS), 0.7, n)), 199).astype(np.int64)
    store = people.country[owner] * STORES_PER_COUNTRY + rng.integers(0, STORES_PER_COUNTRY, n)
    data = pa.table(
        {
            "record_no": pa.array(record_no),
            "person_no": pa.array(person_no),
            "store_id": pick(catalogue.store_ids, store),
            "card_no": nullable(np.where(with_card, card, NULL_NO)),
            "phone": pick(people.phones.values, phone),
            "amount_cents": pa.array(amount),
            "occurred_at": timestamps(occurred),
            "loaded_at": timestamps(loaded),
        }
    )
    return Batch("pos_transactions", data, POS_SELECT)
