"""The true people of one chunk: households, personas, identities and life spans.

This is the ground truth every raw row is generated *from*. Decisions that span
several sources (who is in the CRM, who changed email, which households share a phone
or a device) are made here, once per person, so the source builders stay consistent
with each other and with ``ground_truth``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cdp.sample_data.arrays import DAY, between, categorical, owners, select_share, starts
from cdp.sample_data.catalogue import CATEGORIES
from cdp.sample_data.config import GeneratorConfig
from cdp.sample_data.identifiers import (
    COUNTRY_SHARES,
    EmailBook,
    PhoneBook,
    build_email_book,
    build_phone_book,
)
from cdp.sample_data.ids import IdAllocator
from cdp.sample_data.personas import PROSPECT, persona_column, persona_shares
from cdp.sample_data.pools import Pools

HOUSEHOLD_SIZE_SHARES = (0.50, 0.28, 0.13, 0.09)
"""P(1, 2, 3, 4 people)."""
SAME_LAST_NAME = 0.8
FAVOURITE_CATEGORY_SHARE = 0.6
"""Share of a person's product interest that goes to their favourite category."""
MAX_SHARED_DEVICE_USERS = 3
MAX_FAMILY_PHONE_USERS = 4


@dataclass(frozen=True)
class People:
    """Struct of arrays, one entry per person of the chunk (local index i)."""

    person_no: np.ndarray
    household_no: np.ndarray
    household: np.ndarray
    """Local household index (people of a household are contiguous)."""
    country: np.ndarray
    persona: np.ndarray
    first_name: np.ndarray
    last_name: np.ndarray
    address: np.ndarray
    """Pool indexes (names, city + postal code)."""
    birth_day: np.ndarray
    """Days since 1970-01-01."""
    favourite_category: np.ndarray
    start: np.ndarray
    end: np.ndarray
    """Active window, epoch seconds: all of the person's activity falls inside it."""
    has_crm: np.ndarray
    has_card: np.ndarray
    declines_email: np.ndarray
    has_shop: np.ndarray
    subscriber: np.ndarray
    devices: np.ndarray
    identifies: np.ndarray
    """Logs in or types an email on the web (so their devices can be linked)."""
    email_changed: np.ndarray
    change_time: np.ndarray
    phone_holder: np.ndarray
    """Whose phone the person's CRM/shop records carry: themselves, or the household
    member whose phone the family shares."""
    family_phone: np.ndarray
    device_holder: np.ndarray
    """Whose first device the person's first device is (a shared household device)."""
    shared_device: np.ndarray
    duplicate_crm: np.ndarray
    duplicate_shop: np.ndarray
    emails: EmailBook
    phones: PhoneBook

    @property
    def n(self) -> int:
        return len(self.person_no)

    def email_linked(self) -> np.ndarray:
        """Their true email appears in a source that also carries another identifier."""
        return (
            (self.has_crm & ~self.declines_email) | self.has_shop | self.subscriber | (self.identifies & ~self.has_shop)
        )


def household_sizes(rng: np.random.Generator, people: int) -> np.ndarray:
    """Sizes summing to exactly ``people``: households never straddle a chunk."""
    sizes = categorical(rng, HOUSEHOLD_SIZE_SHARES, people) + 1
    cut = int(np.searchsorted(np.cumsum(sizes), people))
    sizes = sizes[: cut + 1].copy()
    sizes[-1] -= int(sizes.sum()) - people
    return sizes


def _household_members(eligible: np.ndarray, household: np.ndarray, households: int, limit: int) -> np.ndarray:
    """Per eligible person: 0-based rank among the eligible members of their household."""
    order = np.flatnonzero(eligible)
    counts = np.bincount(household[order], minlength=households)
    rank = np.full(len(eligible), -1, dtype=np.int64)
    rank[order] = np.arange(len(order)) - starts(counts)[household[order]]
    return np.where(rank < limit, rank, -1)


def _share_within_households(
    rng: np.random.Generator,
    eligible: np.ndarray,
    household: np.ndarray,
    households: int,
    target_people: float,
    limit: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Pick households with >= 2 eligible members until ~target_people members share.

    Returns (holder, sharing): holder[i] is the household member whose identifier i
    uses (i itself when not sharing); sharing marks everyone involved, holder included.
    """
    rank = _household_members(eligible, household, households, limit)
    members = np.bincount(household[rank >= 0], minlength=households)
    candidates = members >= 2
    chosen_households = select_share(
        rng, candidates, target_people * candidates.sum() / max(members[candidates].sum(), 1)
    )
    sharing = (rank >= 0) & chosen_households[household]
    first_member = np.full(households, -1, dtype=np.int64)
    head = sharing & (rank == 0)
    first_member[household[head]] = np.flatnonzero(head)
    holder = np.arange(len(eligible), dtype=np.int64)
    holder[sharing] = first_member[household[sharing]]
    return holder, sharing


def build_people(cfg: GeneratorConfig, rng: np.random.Generator, pools: Pools, ids: IdAllocator, count: int) -> People:
    noise = cfg.noise
    as_of = cfg.as_of_epoch
    person_no = ids.take("person", count)

    sizes = household_sizes(rng, count)
    household = owners(sizes)
    households = len(sizes)
    household_no = ids.take("household", households)[household]
    country = categorical(rng, COUNTRY_SHARES, households)[household]
    address = pools.cities.sample(rng, country[starts(sizes)])[household]
    family_name = pools.last_names.sample(rng, country[starts(sizes)])[household]
    own_name = pools.last_names.sample(rng, country)
    last_name = np.where(rng.random(count) < SAME_LAST_NAME, family_name, own_name)
    first_name = pools.first_names.sample(rng, country)
    birth_day = (as_of // DAY) - (18 * 365 + rng.random(count) * 62 * 365).astype(np.int64)

    persona = categorical(rng, persona_shares(), count)
    favourite_category = rng.integers(0, len(CATEGORIES), count)

    scale = min(1.0, cfg.history_days / (3 * 365))
    start_days = np.array(persona_column("start_days"), dtype=float) * scale
    end_days = np.array(persona_column("end_days"), dtype=float) * scale
    start_ago = (start_days[persona, 0] + rng.random(count) * (start_days[persona, 1] - start_days[persona, 0])) * DAY
    end_ago = (end_days[persona, 0] + rng.random(count) * (end_days[persona, 1] - end_days[persona, 0])) * DAY
    end_ago = np.minimum(end_ago, 0.9 * start_ago)
    start = as_of - start_ago.astype(np.int64)
    end = np.minimum(as_of - end_ago.astype(np.int64), as_of - 60)

    def chance(column: str) -> np.ndarray:
        return rng.random(count) < persona_column(column)[persona]

    has_crm = chance("crm")
    has_card = has_crm & chance("loyalty_card")
    declines_email = has_crm & chance("declines_email")
    has_shop = chance("shop")
    subscriber = chance("subscriber") & ~declines_email
    low, high = persona_column("min_devices")[persona], persona_column("max_devices")[persona]
    devices = low + (rng.random(count) * (high - low + 1)).astype(np.int64)
    subscriber |= ~has_crm & ~has_shop & (devices == 0)  # everyone appears somewhere
    identifies = (devices > 0) & (has_shop | (persona == PROSPECT))

    with_both = has_crm & has_shop
    can_change = with_both & ~declines_email & (devices > 0) & (end - start > 30 * DAY)
    email_changed = select_share(rng, can_change, noise.email_change * with_both.sum())
    change_time = np.where(email_changed, start + ((0.3 + 0.5 * rng.random(count)) * (end - start)).astype(np.int64), 0)

    # A family phone only goes on records that also carry the member's own email, so the
    # records stay linkable once the phone is recognised as shared.
    phone_holder, family_phone = _share_within_households(
        rng,
        (has_crm | has_shop) & ~declines_email & ~email_changed,
        household,
        households,
        noise.family_phone * count,
        MAX_FAMILY_PHONE_USERS,
    )
    device_holder, shared_device = _share_within_households(
        rng, has_shop & (devices > 0), household, households, noise.shared_device * count, MAX_SHARED_DEVICE_USERS
    )

    duplicate_crm = select_share(rng, has_crm & ~declines_email, noise.duplicate_crm * has_crm.sum())
    duplicate_shop = select_share(rng, has_shop, noise.duplicate_shop * has_shop.sum())

    emails = build_email_book(
        pc.take(pools.first_names.folded, pa.array(first_name)),
        pc.take(pools.last_names.folded, pa.array(last_name)),
        person_no,
        country,
        rng,
    )
    return People(
        person_no=person_no,
        household_no=household_no,
        household=household,
        country=country,
        persona=persona,
        first_name=first_name,
        last_name=last_name,
        address=address,
        birth_day=birth_day,
        favourite_category=favourite_category,
        start=start,
        end=end,
        has_crm=has_crm,
        has_card=has_card,
        declines_email=declines_email,
        has_shop=has_shop,
        subscriber=subscriber,
        devices=devices,
        identifies=identifies,
        email_changed=email_changed,
        change_time=change_time,
        phone_holder=phone_holder,
        family_phone=family_phone,
        device_holder=device_holder,
        shared_device=shared_device,
        duplicate_crm=duplicate_crm,
        duplicate_shop=duplicate_shop,
        emails=emails,
        phones=build_phone_book(country, person_no),
    )


def uniform_in_window(rng: np.random.Generator, people: People, who: np.ndarray) -> np.ndarray:
    """A time inside each listed person's active window."""
    return between(rng, people.start[who], people.end[who])
