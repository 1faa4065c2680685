"""Locale-true names and places, drawn from Faker once per run and then sampled with numpy.

Calling Faker per person would dominate the run time at a million people; a few
hundred distinct values per locale are plenty for realistic-looking data, and a
seeded Faker keeps the pools (and so the warehouse) deterministic.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from faker import Faker

from cdp.sample_data.identifiers import COUNTRIES

LOCALES: tuple[str, ...] = ("en_US", "en_GB", "de_DE", "fr_FR")
FIRST_NAMES_PER_LOCALE = 400
LAST_NAMES_PER_LOCALE = 400
ADDRESSES_PER_LOCALE = 300
_NOT_EMAIL_SAFE = re.compile(r"[^a-z]")


def fold_for_email(name: str) -> str:
    """``Müller-Lüdenscheidt`` -> ``mullerludenscheidt``: what people type in an address."""
    ascii_only = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return _NOT_EMAIL_SAFE.sub("", ascii_only.lower()) or "user"


@dataclass(frozen=True)
class Pool:
    """Values of all locales, concatenated; locale k owns ``values[offset[k]:offset[k] + size[k]]``."""

    values: pa.Array
    folded: pa.Array
    offset: np.ndarray
    size: np.ndarray

    def sample(self, rng: np.random.Generator, country: np.ndarray) -> np.ndarray:
        """One index per row, uniform within the row's country's locale."""
        return self.offset[country] + (rng.random(len(country)) * self.size[country]).astype(np.int64)


@dataclass(frozen=True)
class Pools:
    first_names: Pool
    last_names: Pool
    cities: Pool
    postal_codes: pa.Array
    """Aligned with ``cities``: a city and its postal code are drawn together."""


def _distinct(draw, count: int, attempts: int) -> list:
    seen: dict = {}
    for _ in range(attempts):
        seen.setdefault(draw(), None)
        if len(seen) == count:
            break
    return list(seen)


def _pool(values_by_locale: list[list[str]]) -> Pool:
    flat = [v for values in values_by_locale for v in values]
    sizes = np.array([len(v) for v in values_by_locale], dtype=np.int64)
    return Pool(
        values=pa.array(flat),
        folded=pa.array([fold_for_email(v) for v in flat]),
        offset=np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64),
        size=sizes,
    )


def build_pools(seed: int) -> Pools:
    """Seeded pools for COUNTRIES, in the same order (en_US for US, ...)."""
    assert len(LOCALES) == len(COUNTRIES)
    first: list[list[str]] = []
    last: list[list[str]] = []
    cities: list[list[str]] = []
    postal: list[str] = []
    for k, locale in enumerate(LOCALES):
        fake = Faker(locale)
        fake.seed_instance(seed * 31 + k)
        first.append(_distinct(fake.first_name, FIRST_NAMES_PER_LOCALE, FIRST_NAMES_PER_LOCALE * 10))
        last.append(_distinct(fake.last_name, LAST_NAMES_PER_LOCALE, LAST_NAMES_PER_LOCALE * 10))
        places = _distinct(lambda f=fake: (f.city(), f.postcode()), ADDRESSES_PER_LOCALE, ADDRESSES_PER_LOCALE * 10)
        cities.append([city for city, _ in places])
        postal.extend(code for _, code in places)
    return Pools(first_names=_pool(first), last_names=_pool(last), cities=_pool(cities), postal_codes=pa.array(postal))
