"""Email engagement from the email service provider: sends, opens, clicks, opt-outs.

Subscribers receive a handful of the weekly campaigns after they subscribe. Open and
click rates are personal (drawn from the persona's distribution) and collapse after a
person's active period, so engagement scores separate people. A few addresses bounce;
some people unsubscribe or complain on their last campaign, which ``privacy`` turns
into consent revocations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from cdp.sample_data.arrays import (
    DAY,
    HOUR,
    MINUTE,
    late_arrivals,
    owners,
    pick,
    rank_in_owner,
    timestamps,
)
from cdp.sample_data.catalogue import Campaigns
from cdp.sample_data.config import NoiseConfig
from cdp.sample_data.ids import IdAllocator, id_sql
from cdp.sample_data.noise import NoiseLog
from cdp.sample_data.people import People
from cdp.sample_data.personas import persona_column
from cdp.sample_data.schema import Batch

EMAIL_EVENT_TYPES: tuple[str, ...] = ("sent", "delivered", "opened", "clicked", "bounced", "unsubscribed", "complained")
SENT, DELIVERED, OPENED, CLICKED, BOUNCED, UNSUBSCRIBED, COMPLAINED = range(len(EMAIL_EVENT_TYPES))
EXTRA_CAMPAIGNS = 1.5
"""Mean campaigns per subscriber beyond the first."""
BOUNCE_SHARE = 0.02
UNSUBSCRIBE_SHARE = 0.06
COMPLAINT_SHARE = 0.005
CLICK_RATE = (2.0, 5.0)
"""Beta(a, b) of the share of opens that lead to a click."""
LAPSED_OPEN_FACTOR = 0.15
"""Open rate multiplier for campaigns sent after the person's active period."""

EMAIL_SELECT = f"""
    {id_sql("email_events", "record_no")}, email, event_type, campaign_id, occurred_at, loaded_at
"""


@dataclass(frozen=True)
class EmailActivity:
    batch: Batch
    subscribed_at: np.ndarray
    """Per person: when they subscribed (0 if not a subscriber)."""
    opted_out_at: np.ndarray
    """Per person: time of their unsubscribe or complaint event (0 if none)."""
    complained: np.ndarray
    """Per person: the opt-out was a spam complaint."""


def build_email_events(
    rng: np.random.Generator,
    people: People,
    campaigns: Campaigns,
    noise: NoiseConfig,
    ids: IdAllocator,
    log: NoiseLog,
    as_of: int,
) -> EmailActivity:
    subscriber = np.flatnonzero(people.subscriber)
    m = len(subscriber)
    subscribed_at = np.zeros(people.n, dtype=np.int64)
    subscribed_at[subscriber] = np.minimum(
        people.start[subscriber] + (rng.random(m) * 14 * DAY).astype(np.int64), as_of - HOUR
    )
    first = np.searchsorted(campaigns.sent_at, subscribed_at[subscriber])
    available = len(campaigns.sent_at) - first
    u = rng.random(m)
    bounces = u < BOUNCE_SHARE
    unsubscribes = (u >= BOUNCE_SHARE) & (u < BOUNCE_SHARE + UNSUBSCRIBE_SHARE)
    complains = (u >= BOUNCE_SHARE + UNSUBSCRIBE_SHARE) & (u < BOUNCE_SHARE + UNSUBSCRIBE_SHARE + COMPLAINT_SHARE)
    wanted = np.where(bounces, 1, 1 + rng.poisson(EXTRA_CAMPAIGNS, m))
    count = np.minimum(wanted, available)
    step = np.maximum(available // np.maximum(count, 1), 1)
    offset = (rng.random(m) * np.maximum(available - step * (count - 1), 1)).astype(np.int64)

    # One row per (subscriber, campaign) send.
    s = owners(count)
    j = rank_in_owner(count)
    campaign = first[s] + offset[s] + j * step[s]
    who = subscriber[s]
    sent = campaigns.sent_at[campaign] + (rng.random(len(s)) * 2 * HOUR).astype(np.int64)
    a, b = persona_column("open_rate")[people.persona].T
    open_rate = rng.beta(a, b)[who] * np.where(sent > people.end[who], LAPSED_OPEN_FACTOR, 1.0)
    click_rate = rng.beta(*CLICK_RATE, people.n)[who]
    last = j == count[s] - 1

    delivered = ~bounces[s]
    delivered_at = sent + 5 + (rng.random(len(s)) * 5 * MINUTE).astype(np.int64)
    opened = delivered & (rng.random(len(s)) < open_rate)
    opened_at = delivered_at + 5 * MINUTE + (rng.random(len(s)) * 2 * DAY).astype(np.int64)
    clicked = opened & (rng.random(len(s)) < click_rate)
    clicked_at = opened_at + 10 + (rng.random(len(s)) * 10 * MINUTE).astype(np.int64)
    opt_out_at = delivered_at + HOUR + (rng.random(len(s)) * 3 * DAY).astype(np.int64)
    unsubscribed = delivered & last & unsubscribes[s]
    complained = delivered & last & complains[s]

    masks = (np.ones(len(s), dtype=bool), delivered, opened, clicked, ~delivered, unsubscribed, complained)
    times = (sent, delivered_at, opened_at, clicked_at, delivered_at, opt_out_at, opt_out_at)
    send = np.concatenate([np.flatnonzero(mask) for mask in masks])
    event_type = np.concatenate([np.full(int(mask.sum()), code) for code, mask in enumerate(masks)])
    occurred = np.concatenate([t[mask] for t, mask in zip(times, masks, strict=True)])
    kept = occurred <= as_of
    send, event_type, occurred = send[kept], event_type[kept], occurred[kept]

    order = np.argsort(occurred, kind="stable")
    send, event_type, occurred = send[order], event_type[order], occurred[order]
    owner = who[send]
    record_no = ids.take("email_events", len(send))
    person_no = people.person_no[owner]
    loaded, late = late_arrivals(rng, occurred, as_of, noise.late_event)
    log.add("late_event", "email_events", record_no[late], person_no[late])

    opted_out_at = np.zeros(people.n, dtype=np.int64)
    opt_out = np.isin(event_type, (UNSUBSCRIBED, COMPLAINED))
    opted_out_at[owner[opt_out]] = occurred[opt_out]
    person_complained = np.zeros(people.n, dtype=bool)
    person_complained[owner[event_type == COMPLAINED]] = True

    previous = people.email_changed[owner] & (sent[send] < people.change_time[owner])  # address used for the send
    email = people.emails.index(owner, previous, np.zeros(len(owner), dtype=np.int64))
    data = pa.table(
        {
            "record_no": pa.array(record_no),
            "person_no": pa.array(person_no),
            "email": pick(people.emails.values, email),
            "event_type": pick(pa.array(EMAIL_EVENT_TYPES), event_type),
            "campaign_id": pick(campaigns.ids, campaign[send]),
            "occurred_at": timestamps(occurred),
            "loaded_at": timestamps(loaded),
        }
    )
    return EmailActivity(
        batch=Batch("email_events", data, EMAIL_SELECT),
        subscribed_at=subscribed_at,
        opted_out_at=opted_out_at,
        complained=person_complained,
    )
