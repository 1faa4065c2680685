"""Shop orders and their line items, with web-funnel facts for the web builder.

Order counts and timing follow the persona (loyal: many and recent, one_off: one,
churned: only long ago), and lines favour the person's favourite category, so RFM,
category affinity and lifecycle attributes have something real to find.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from cdp.sample_data.arrays import DAY, between, categorical, owners, pick, rank_in_owner, starts, timestamps
from cdp.sample_data.catalogue import Catalogue, sample_products
from cdp.sample_data.identifiers import CURRENCIES
from cdp.sample_data.ids import IdAllocator, id_sql
from cdp.sample_data.people import FAVOURITE_CATEGORY_SHARE, People
from cdp.sample_data.personas import LOYAL, persona_column
from cdp.sample_data.profiles import Profiles
from cdp.sample_data.schema import Batch

ORDER_STATUSES: tuple[str, ...] = ("completed", "cancelled", "refunded")
ORDER_STATUS_SHARES = (0.90, 0.05, 0.05)
LINES_PER_ORDER_SHARES = (0.65, 0.22, 0.09, 0.04)
QUANTITY_SHARES = (0.80, 0.15, 0.05)
LOYAL_RECENT_DAYS = 45
"""Every loyal customer has an order within this many days of as_of."""
DUPLICATE_ACCOUNT_USE = 0.5
"""Share of orders placed after a duplicate account exists that go through it."""

ORDER_SELECT = f"""
    {id_sql("shop_orders", "record_no")}, {id_sql("shop_customers", "customer_no")}, ordered_at, status,
    (total_cents * 0.01)::decimal(12,2), currency
"""
ITEM_SELECT = f"""
    {id_sql("shop_orders", "order_no")}, line_number, product_id, product_category, quantity,
    (unit_price_cents * 0.01)::decimal(12,2)
"""


@dataclass(frozen=True)
class Orders:
    orders: Batch
    items: Batch
    owner: np.ndarray
    """Local person index of each order."""
    order_no: np.ndarray
    ordered_at: np.ndarray
    customer_no: np.ndarray
    """The account (primary or duplicate) that placed the order."""
    first_product: np.ndarray
    total_cents: np.ndarray


def build_orders(
    rng: np.random.Generator,
    people: People,
    profiles: Profiles,
    catalogue: Catalogue,
    ids: IdAllocator,
    as_of: int,
) -> Orders:
    low, high = persona_column("min_orders")[people.persona], persona_column("max_orders")[people.persona]
    counts = np.where(people.has_shop, low + (rng.random(people.n) * (high - low + 1)).astype(np.int64), 0)
    owner = owners(counts)
    ordered_at = between(rng, people.start[owner], people.end[owner])
    first_of_loyal = np.zeros(len(owner), dtype=bool)
    first_of_loyal[starts(counts)[(counts > 0) & (people.persona == LOYAL)]] = True
    recent_from = np.maximum(people.start[owner], as_of - LOYAL_RECENT_DAYS * DAY)
    ordered_at[first_of_loyal] = between(rng, recent_from[first_of_loyal], people.end[owner][first_of_loyal])
    order_no = ids.take("shop_orders", len(owner))

    duplicate_no = profiles.duplicate_customer_no[owner]
    via_duplicate = (
        (duplicate_no >= 0)
        & (ordered_at >= profiles.duplicate_created[owner])
        & (rng.random(len(owner)) < DUPLICATE_ACCOUNT_USE)
    )
    customer_no = np.where(via_duplicate, duplicate_no, profiles.customer_no[owner])

    lines = categorical(rng, LINES_PER_ORDER_SHARES, len(owner)) + 1
    line_order = owners(lines)
    product = sample_products(rng, people.favourite_category[owner[line_order]], FAVOURITE_CATEGORY_SHARE)
    quantity = categorical(rng, QUANTITY_SHARES, len(line_order)) + 1
    unit_price = catalogue.price_cents[product]
    total_cents = np.bincount(line_order, weights=quantity * unit_price, minlength=len(owner)).round().astype(np.int64)

    orders = pa.table(
        {
            "record_no": pa.array(order_no),
            "person_no": pa.array(people.person_no[owner]),
            "customer_no": pa.array(customer_no),
            "ordered_at": timestamps(ordered_at),
            "status": pick(pa.array(ORDER_STATUSES), categorical(rng, ORDER_STATUS_SHARES, len(owner))),
            "total_cents": pa.array(total_cents),
            "currency": pick(pa.array(CURRENCIES), people.country[owner]),
        }
    )
    items = pa.table(
        {
            "order_no": pa.array(order_no[line_order]),
            "line_number": pa.array((rank_in_owner(lines) + 1).astype(np.int32)),
            "product_id": pick(catalogue.product_ids, product),
            "product_category": pick(catalogue.categories, catalogue.product_category[product]),
            "quantity": pa.array(quantity.astype(np.int32)),
            "unit_price_cents": pa.array(unit_price),
        }
    )
    return Orders(
        orders=Batch("shop_orders", orders, ORDER_SELECT),
        items=Batch("shop_order_items", items, ITEM_SELECT),
        owner=owner,
        order_no=order_no,
        ordered_at=ordered_at,
        customer_no=customer_no,
        first_product=product[starts(lines)],
        total_cents=total_cents,
    )
