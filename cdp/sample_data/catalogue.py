"""The fixed world the people act in: products, search terms, stores, email campaigns.

The catalogue does not depend on the seed, so product ids and prices mean the same
thing in every generated warehouse (handy for docs and segment examples).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa

from cdp.sample_data.identifiers import COUNTRIES

CATEGORIES: tuple[str, ...] = (
    "running shoes",
    "trail shoes",
    "apparel",
    "outdoor gear",
    "fitness equipment",
    "accessories",
    "nutrition",
    "kids",
)
CATEGORY_CODES: tuple[str, ...] = ("RUN", "TRL", "APP", "OUT", "FIT", "ACC", "NUT", "KID")
CATEGORY_PRICE_RANGE_CENTS: tuple[tuple[int, int], ...] = (
    (6_000, 18_000),
    (8_000, 20_000),
    (1_500, 9_000),
    (2_000, 30_000),
    (2_500, 60_000),
    (800, 5_000),
    (300, 4_000),
    (1_500, 7_000),
)
PRODUCTS_PER_CATEGORY = 25

SEARCH_QUERIES: tuple[tuple[str, ...], ...] = (
    ("running shoes", "road running shoes", "marathon shoes", "cushioned running shoes"),
    ("trail shoes", "trail running shoes", "waterproof trail shoes", "hiking shoes"),
    ("running jacket", "running shorts", "base layer", "running socks"),
    ("tent", "backpack", "headlamp", "sleeping bag"),
    ("dumbbells", "yoga mat", "resistance bands", "kettlebell"),
    ("gps watch", "water bottle", "running belt", "sunglasses"),
    ("energy gel", "protein bar", "electrolyte drink", "recovery shake"),
    ("kids running shoes", "kids jacket", "kids backpack", "school shoes"),
)

PAGE_PATHS: tuple[str, ...] = ("/", "/sale", "/stores", "/blog/training-plans", "/account", "/help/returns")

STORES_PER_COUNTRY = 12

SUPPORT_CATEGORIES: tuple[str, ...] = ("delivery", "returns", "product_question", "billing", "account")
SUPPORT_STATUSES: tuple[str, ...] = ("open", "pending", "solved", "closed")

CAMPAIGN_INTERVAL_DAYS = 7


@dataclass(frozen=True)
class Catalogue:
    """Products and their prices, flattened so events can index them with numpy."""

    product_ids: pa.Array
    product_category: np.ndarray
    """Category code (index into CATEGORIES) of each product."""
    price_cents: np.ndarray
    categories: pa.Array
    queries: pa.Array
    """All search queries, category by category (QUERIES_PER_CATEGORY each)."""
    page_paths: pa.Array
    store_ids: pa.Array
    """STORES_PER_COUNTRY stores per country, in COUNTRIES order."""


QUERIES_PER_CATEGORY = len(SEARCH_QUERIES[0])


def build_catalogue() -> Catalogue:
    """The catalogue. A fixed internal seed keeps prices identical across generator seeds."""
    rng = np.random.default_rng(20_261_101)
    ids: list[str] = []
    category: list[int] = []
    prices: list[int] = []
    for code, (short, (low, high)) in enumerate(zip(CATEGORY_CODES, CATEGORY_PRICE_RANGE_CENTS, strict=True)):
        cents = rng.integers(low // 100, high // 100, PRODUCTS_PER_CATEGORY) * 100 - 1  # x.99 prices
        for number, price in enumerate(cents, start=1):
            ids.append(f"{short}-{number:04d}")
            category.append(code)
            prices.append(int(price))
    # Store ids start with the store's ISO country, which staging uses to read national phones.
    stores = [f"{country}-{n:03d}" for country in COUNTRIES for n in range(1, STORES_PER_COUNTRY + 1)]
    return Catalogue(
        product_ids=pa.array(ids),
        product_category=np.array(category, dtype=np.int64),
        price_cents=np.array(prices, dtype=np.int64),
        categories=pa.array(CATEGORIES),
        queries=pa.array([q for group in SEARCH_QUERIES for q in group]),
        page_paths=pa.array(PAGE_PATHS),
        store_ids=pa.array(stores),
    )


@dataclass(frozen=True)
class Campaigns:
    """Weekly marketing emails over the whole history window."""

    ids: pa.Array
    sent_at: np.ndarray
    """Send time of each campaign, epoch seconds, ascending."""


def build_campaigns(as_of: datetime, history_days: int) -> Campaigns:
    """One campaign every CAMPAIGN_INTERVAL_DAYS at 09:00, from the start of history up to as_of."""
    first = (as_of - timedelta(days=history_days)).replace(hour=9, minute=0, second=0, microsecond=0)
    times: list[datetime] = []
    current = first
    while current <= as_of:
        times.append(current)
        current += timedelta(days=CAMPAIGN_INTERVAL_DAYS)
    epoch = datetime(1970, 1, 1)
    return Campaigns(
        ids=pa.array([f"CMP-{t:%Y%m%d}" for t in times]),
        sent_at=np.array([int((t - epoch).total_seconds()) for t in times], dtype=np.int64),
    )


def sample_products(rng: np.random.Generator, favourite_category: np.ndarray, favourite_share: float) -> np.ndarray:
    """A product index per row: from the row's favourite category with favourite_share, else any."""
    n = len(favourite_category)
    category = np.where(rng.random(n) < favourite_share, favourite_category, rng.integers(0, len(CATEGORIES), n))
    return category * PRODUCTS_PER_CATEGORY + rng.integers(0, PRODUCTS_PER_CATEGORY, n)
