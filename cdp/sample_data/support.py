"""Support tickets, keyed only by the email the person wrote from.

Only people whose email also appears in a source with another identifier open
tickets, so every ticket can be linked; the address is the one in use at the time.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from cdp.sample_data.arrays import DAY, between, categorical, owners, pick, timestamps
from cdp.sample_data.catalogue import SUPPORT_CATEGORIES, SUPPORT_STATUSES
from cdp.sample_data.config import NoiseConfig
from cdp.sample_data.identifiers import email_variant
from cdp.sample_data.ids import IdAllocator, id_sql
from cdp.sample_data.noise import NoiseLog, log_email_spelling
from cdp.sample_data.people import People
from cdp.sample_data.personas import persona_column
from cdp.sample_data.schema import Batch

RECENT_DAYS = 7
RECENT_STATUS_SHARES = (0.45, 0.35, 0.20, 0.0)
OLDER_STATUS_SHARES = (0.03, 0.02, 0.25, 0.70)
"""Shares of SUPPORT_STATUSES for tickets opened within RECENT_DAYS of as_of, and older."""

TICKET_SELECT = f"{id_sql('support_tickets', 'record_no')}, email, category, status, opened_at"


def build_support_tickets(
    rng: np.random.Generator, people: People, noise: NoiseConfig, ids: IdAllocator, log: NoiseLog, as_of: int
) -> Batch:
    counts = rng.poisson(persona_column("tickets")[people.persona]) * people.email_linked()
    owner = owners(counts)
    opened = between(rng, people.start[owner], people.end[owner])
    order = np.argsort(opened, kind="stable")
    owner, opened = owner[order], opened[order]
    n = len(owner)

    previous = people.email_changed[owner] & (opened < people.change_time[owner])
    variant = email_variant(rng, n, noise.email_case, noise.email_padding)
    record_no = ids.take("support_tickets", n)
    person_no = people.person_no[owner]
    log_email_spelling(log, "support_tickets", record_no, person_no, variant)

    recent = opened > as_of - RECENT_DAYS * DAY
    status = np.where(recent, categorical(rng, RECENT_STATUS_SHARES, n), categorical(rng, OLDER_STATUS_SHARES, n))
    data = pa.table(
        {
            "record_no": pa.array(record_no),
            "person_no": pa.array(person_no),
            "email": pick(people.emails.values, people.emails.index(owner, previous, variant)),
            "category": pick(pa.array(SUPPORT_CATEGORIES), rng.integers(0, len(SUPPORT_CATEGORIES), n)),
            "status": pick(pa.array(SUPPORT_STATUSES), status),
            "opened_at": timestamps(opened),
        }
    )
    return Batch("support_tickets", data, TICKET_SELECT)
