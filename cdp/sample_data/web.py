"""Web tracking events: anonymous devices that browse, search, buy and sometimes identify.

Each person has 1-3 devices (anonymous_ids). Events on a device are anonymous until
the person identifies there (logs in: user_id = their customer_id; or types an email);
from then on a logged-in customer's events carry user_id, as tracking libraries do.
Every device of an identifying person sees at least one identify event, so devices
are linkable; anonymous visitors never identify. Orders produce the funnel
(add to cart, checkout, order_completed with the real order id); abandoned carts and
searches without a purchase come from browsing.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from cdp.sample_data.arrays import (
    HOUR,
    MINUTE,
    NULL_NO,
    between,
    categorical,
    group_min,
    late_arrivals,
    nullable,
    owners,
    pick,
    rank_in_owner,
    starts,
    timestamps,
)
from cdp.sample_data.catalogue import QUERIES_PER_CATEGORY, Catalogue, sample_products
from cdp.sample_data.commerce import Orders
from cdp.sample_data.config import NoiseConfig
from cdp.sample_data.identifiers import CURRENCIES, email_variant
from cdp.sample_data.ids import IdAllocator, id_sql
from cdp.sample_data.noise import NoiseLog, log_email_spelling
from cdp.sample_data.people import FAVOURITE_CATEGORY_SHARE, People
from cdp.sample_data.personas import ANONYMOUS, persona_column
from cdp.sample_data.profiles import Profiles
from cdp.sample_data.schema import Batch

WEB_EVENT_TYPES: tuple[str, ...] = (
    "page_viewed",
    "product_viewed",
    "product_searched",
    "product_added_to_cart",
    "checkout_started",
    "order_completed",
    "identify",
)
PAGE, PRODUCT_VIEW, SEARCH, ADD_TO_CART, CHECKOUT, ORDER_COMPLETED, IDENTIFY = range(len(WEB_EVENT_TYPES))
BROWSE_TYPE_SHARES = (0.30, 0.35, 0.13, 0.14, 0.08)
"""Shares of page_viewed .. checkout_started among browsing events (no order follows)."""
EXTRA_IDENTIFY = 0.3
"""P(a device sees a second identify event)."""
IDENTIFY_WITH_EMAIL = 0.3
"""P(a logged-in identify also carries the email the customer typed)."""

_PRICE = "(amount_cents * 0.01)::decimal(12,2)"
_PRODUCT = '\'{"product_id":"\' || product_id || \'","category":"\' || category || \'",\''
WEB_SELECT = f"""
    {id_sql("web_events", "record_no")},
    {id_sql("anonymous_id", "device_no")},
    {id_sql("shop_customers", "customer_no")},
    email,
    event_type,
    case event_type
        when 'page_viewed' then '{{"path":"' || path || '"}}'
        when 'product_viewed' then {_PRODUCT} || '"price":' || {_PRICE} || '}}'
        when 'product_searched' then '{{"query":"' || query || '"}}'
        when 'product_added_to_cart' then {_PRODUCT} || '"quantity":1,"price":' || {_PRICE} || '}}'
        when 'checkout_started' then '{{"cart_value":' || {_PRICE} || ',"currency":"' || currency || '"}}'
        when 'order_completed' then '{{"order_id":"' || {id_sql("shop_orders", "order_no")}
            || '","total":' || {_PRICE} || ',"currency":"' || currency || '"}}'
        when 'identify' then
            case when customer_no is null then '{{"method":"email_capture"}}' else '{{"method":"login"}}' end
    end,
    occurred_at,
    loaded_at
"""


def _concat(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts).astype(np.int64)


NO_BOUND = np.iinfo(np.int64).max


def _first_identify_bound(
    people: People,
    first_slot: np.ndarray,
    slots: int,
    event_slot: np.ndarray,
    event_time: np.ndarray,
    checkout_slot: np.ndarray,
    checkout_time: np.ndarray,
) -> np.ndarray:
    """Per device slot, the latest time its first identify may happen.

    Before the slot's first checkout (buyers are logged in); on a shared device, before
    all of the person's events there; for an email changer's first device, before the
    change (so that identify carries the old email next to the customer_id).
    """
    bound = group_min(checkout_time - MINUTE, checkout_slot, slots, NO_BOUND)
    shared_slot = np.zeros(slots, dtype=bool)
    shared_slot[first_slot[people.shared_device]] = True
    on_shared = shared_slot[event_slot]
    bound = np.minimum(bound, group_min(event_time[on_shared] - MINUTE, event_slot[on_shared], slots, NO_BOUND))
    changers = people.email_changed
    bound[first_slot[changers]] = np.minimum(bound[first_slot[changers]], people.change_time[changers] - HOUR)
    return bound


def build_web_events(
    rng: np.random.Generator,
    people: People,
    profiles: Profiles,
    orders: Orders,
    catalogue: Catalogue,
    noise: NoiseConfig,
    ids: IdAllocator,
    log: NoiseLog,
    as_of: int,
) -> Batch:
    # Devices ("slots"): a person's k-th device. Shared households reuse the holder's first one.
    slot_owner = owners(people.devices)
    first_slot = starts(people.devices)
    slots = len(slot_owner)
    device_no = ids.take("anonymous_id", slots)
    shared = people.shared_device
    device_no[first_slot[shared]] = device_no[first_slot[people.device_holder[shared]]]

    def random_slot(owner: np.ndarray) -> np.ndarray:
        return first_slot[owner] + (rng.random(len(owner)) * people.devices[owner]).astype(np.int64)

    # Browsing: views, searches, abandoned carts and checkouts.
    counts = rng.poisson(persona_column("browse_events")[people.persona])
    counts = np.where(people.persona == ANONYMOUS, np.maximum(counts, 1), counts) * (people.devices > 0)
    b_owner = owners(counts)
    b_time = between(rng, people.start[b_owner], people.end[b_owner])
    b_type = categorical(rng, BROWSE_TYPE_SHARES, len(b_owner))
    b_product = sample_products(rng, people.favourite_category[b_owner], FAVOURITE_CATEGORY_SHARE)
    b_query = catalogue.product_category[b_product] * QUERIES_PER_CATEGORY + rng.integers(
        0, QUERIES_PER_CATEGORY, len(b_owner)
    )

    # Purchase funnel of every order: add to cart, checkout, order_completed.
    tracked = np.flatnonzero(people.devices[orders.owner] > 0)
    f_order = np.repeat(tracked, 3)
    f_owner = orders.owner[f_order]
    f_type = np.tile([ADD_TO_CART, CHECKOUT, ORDER_COMPLETED], len(tracked))
    lead = np.stack(
        [
            5 * MINUTE + (rng.random(len(tracked)) * 55 * MINUTE).astype(np.int64),
            MINUTE + (rng.random(len(tracked)) * 3 * MINUTE).astype(np.int64),
            np.zeros(len(tracked), dtype=np.int64),
        ],
        axis=1,
    ).ravel()
    f_time = orders.ordered_at[f_order] - lead
    f_slot = np.repeat(random_slot(orders.owner[tracked]), 3)
    b_slot = random_slot(b_owner)

    # Identify: on every device of people who log in or type an email. Once a customer has
    # logged in on a device, their later events there carry user_id.
    per_slot = np.where(people.identifies[slot_owner], 1 + (rng.random(slots) < EXTRA_IDENTIFY), 0)
    i_slot = owners(per_slot)
    i_owner = slot_owner[i_slot]
    i_time = between(rng, people.start[i_owner], people.end[i_owner])
    bound = _first_identify_bound(
        people, first_slot, slots, _concat(b_slot, f_slot), _concat(b_time, f_time), f_slot, f_time
    )
    first_identify = rank_in_owner(per_slot) == 0
    i_time[first_identify] = np.minimum(i_time[first_identify], bound[i_slot[first_identify]])
    identified_at = group_min(i_time, i_slot, slots, NO_BOUND)

    has_account = people.has_shop[i_owner]
    with_email = ~has_account | (rng.random(len(i_owner)) < IDENTIFY_WITH_EMAIL)
    changers = people.email_changed
    changer_proof = first_identify & changers[i_owner] & (i_slot == first_slot[i_owner])
    with_email |= changer_proof  # ties the old email to the customer_id
    previous = changers[i_owner] & (i_time < people.change_time[i_owner])
    variant = email_variant(rng, len(i_owner), noise.email_case, noise.email_padding)
    i_email = np.where(with_email, people.emails.index(i_owner, previous, variant), NULL_NO)

    b_customer = np.where(
        people.has_shop[b_owner] & (b_time >= identified_at[b_slot]), profiles.customer_no[b_owner], NULL_NO
    )
    i_customer = np.where(has_account, profiles.customer_no[i_owner], NULL_NO)
    f_customer = orders.customer_no[f_order]

    # All events in one set of columns (browse, funnel, identify), then in time order.
    n_b, n_f, n_i = len(b_owner), len(f_owner), len(i_owner)
    none = np.full
    owner = _concat(b_owner, f_owner, i_owner)
    slot = _concat(b_slot, f_slot, i_slot)
    event_type = _concat(b_type, f_type, none(n_i, IDENTIFY))
    occurred = _concat(b_time, f_time, i_time)
    customer = _concat(b_customer, f_customer, i_customer)
    email = _concat(none(n_b + n_f, NULL_NO), i_email)
    email_spelling = _concat(none(n_b + n_f, 0), np.where(with_email, variant, 0))
    f_product = orders.first_product[f_order]
    product = _concat(b_product, f_product, none(n_i, 0))
    product = np.where(np.isin(event_type, (PRODUCT_VIEW, ADD_TO_CART)), product, NULL_NO)
    query = np.where(event_type == SEARCH, _concat(b_query, none(n_f + n_i, 0)), NULL_NO)
    path = np.where(event_type == PAGE, rng.integers(0, len(catalogue.page_paths), len(owner)), NULL_NO)
    f_amount = np.where(f_type == ADD_TO_CART, catalogue.price_cents[f_product], orders.total_cents[f_order])
    amount = _concat(catalogue.price_cents[b_product], f_amount, none(n_i, NULL_NO))
    f_order_no = np.where(f_type == ORDER_COMPLETED, orders.order_no[f_order], NULL_NO)
    order_no = _concat(none(n_b, NULL_NO), f_order_no, none(n_i, NULL_NO))
    first_on_shared = first_identify & shared[i_owner] & (i_slot == first_slot[i_owner])
    shared_marker = np.concatenate([np.zeros(n_b + n_f, dtype=bool), first_on_shared])

    order = np.argsort(occurred, kind="stable")
    owner, slot, event_type, occurred, customer = (a[order] for a in (owner, slot, event_type, occurred, customer))
    email, email_spelling, product, query, path = (a[order] for a in (email, email_spelling, product, query, path))
    amount, order_no, shared_marker = amount[order], order_no[order], shared_marker[order]
    record_no = ids.take("web_events", len(order))
    person_no = people.person_no[owner]

    has_email = email != NULL_NO
    log_email_spelling(log, "web_events", record_no[has_email], person_no[has_email], email_spelling[has_email])
    log.add("shared_device", "web_events", record_no[shared_marker], person_no[shared_marker])
    loaded, late = late_arrivals(rng, occurred, as_of, noise.late_event)
    log.add("late_event", "web_events", record_no[late], person_no[late])

    category = np.where(product == NULL_NO, NULL_NO, catalogue.product_category[np.maximum(product, 0)])
    data = pa.table(
        {
            "record_no": pa.array(record_no),
            "person_no": pa.array(person_no),
            "device_no": pa.array(device_no[slot]),
            "customer_no": nullable(customer),
            "email": pick(people.emails.values, email),
            "event_type": pick(pa.array(WEB_EVENT_TYPES), event_type),
            "product_id": pick(catalogue.product_ids, product),
            "category": pick(catalogue.categories, category),
            "query": pick(catalogue.queries, query),
            "path": pick(catalogue.page_paths, path),
            "amount_cents": nullable(amount),
            "order_no": nullable(order_no),
            "currency": pick(pa.array(CURRENCIES), people.country[owner]),
            "occurred_at": timestamps(occurred),
            "loaded_at": timestamps(loaded),
        }
    )
    return Batch("web_events", data, WEB_SELECT)
