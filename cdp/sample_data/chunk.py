"""One chunk of people and every row they produce, in every raw and ground-truth table.

A chunk is self-contained (its households, devices and orders never refer to another
chunk), draws from its own random generator seeded with (seed, chunk index), and only
shares the running id counters with its neighbours. That bounds memory by the chunk
size and keeps the output a pure function of the config.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cdp.sample_data.arrays import NULL_NO, pick
from cdp.sample_data.campaigns import build_email_events
from cdp.sample_data.catalogue import Campaigns, Catalogue, build_campaigns, build_catalogue
from cdp.sample_data.commerce import build_orders
from cdp.sample_data.config import GeneratorConfig
from cdp.sample_data.identifiers import COUNTRIES
from cdp.sample_data.ids import IdAllocator
from cdp.sample_data.noise import NoiseLog
from cdp.sample_data.people import People, build_people
from cdp.sample_data.personas import PERSONA_NAMES
from cdp.sample_data.pools import Pools, build_pools
from cdp.sample_data.privacy import build_consent_events, build_deletion_requests
from cdp.sample_data.profiles import build_profiles
from cdp.sample_data.schema import PEOPLE_SELECT, Batch
from cdp.sample_data.store import build_pos_transactions
from cdp.sample_data.support import build_support_tickets
from cdp.sample_data.web import build_web_events


@dataclass(frozen=True)
class World:
    """What every chunk shares: name pools, products, the campaign calendar."""

    pools: Pools
    catalogue: Catalogue
    campaigns: Campaigns


def build_world(cfg: GeneratorConfig) -> World:
    return World(
        pools=build_pools(cfg.seed),
        catalogue=build_catalogue(),
        campaigns=build_campaigns(cfg.as_of_utc, cfg.history_days),
    )


@dataclass(frozen=True)
class Chunk:
    raw: list[Batch]
    people: Batch
    noise: pa.Table
    size: int


def chunk_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, index])


def _people_batch(people: People, pools: Pools) -> Batch:
    previous = np.where(people.email_changed, np.arange(people.n), NULL_NO)
    data = pa.table(
        {
            "person_no": pa.array(people.person_no),
            "first_name": pc.take(pools.first_names.values, pa.array(people.first_name)),
            "last_name": pc.take(pools.last_names.values, pa.array(people.last_name)),
            "email": people.emails.current(),
            "phone_e164": people.phones.e164(),
            "country": pick(pa.array(COUNTRIES), people.country),
            "persona": pick(pa.array(PERSONA_NAMES), people.persona),
            "household_no": pa.array(people.household_no),
            "previous_email": pick(people.emails.previous(), previous),
        }
    )
    return Batch("people", data, PEOPLE_SELECT)


def build_chunk(cfg: GeneratorConfig, world: World, ids: IdAllocator, index: int, size: int) -> Chunk:
    rng = chunk_rng(cfg.seed, index)
    noise = cfg.noise
    as_of = cfg.as_of_epoch
    log = NoiseLog()
    people = build_people(cfg, rng, world.pools, ids, size)
    profiles = build_profiles(rng, people, world.pools, noise, ids, log)
    orders = build_orders(rng, people, profiles, world.catalogue, ids, as_of)
    web = build_web_events(rng, people, profiles, orders, world.catalogue, noise, ids, log, as_of)
    email = build_email_events(rng, people, world.campaigns, noise, ids, log, as_of)
    raw = [
        profiles.crm,
        profiles.shop,
        orders.orders,
        orders.items,
        web,
        email.batch,
        build_pos_transactions(rng, people, profiles, world.catalogue, noise, ids, log, as_of),
        build_support_tickets(rng, people, noise, ids, log, as_of),
        build_consent_events(rng, people, profiles, email, ids, as_of),
        build_deletion_requests(rng, people, profiles, ids, as_of),
    ]
    return Chunk(raw=raw, people=_people_batch(people, world.pools), noise=log.to_arrow(), size=size)
