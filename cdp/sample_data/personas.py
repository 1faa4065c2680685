"""Who the generated people are: behaviour archetypes that segments should be able to find.

Each persona fixes which sources a person tends to appear in and how active they are,
relative to ``as_of``: loyal customers buy often and recently, churned ones only long
ago, prospects browse and search but never buy, anonymous visitors never identify.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


@dataclass(frozen=True)
class Persona:
    name: str
    share: float
    """Share of all people."""
    crm: float
    """P(has a CRM contact)."""
    loyalty_card: float
    """P(loyalty card | CRM contact)."""
    declines_email: float
    """P(gave no email at the till | CRM contact): the CRM email is NULL or a placeholder."""
    shop: float
    """P(has a shop account)."""
    subscriber: float
    """P(receives marketing email)."""
    min_devices: int
    max_devices: int
    browse_events: float
    """Mean browsing web events (page/product views, searches, abandoned carts)."""
    min_orders: int
    max_orders: int
    pos_visits: float
    """Mean in-store purchases."""
    tickets: float
    """Mean support tickets."""
    start_days: tuple[int, int]
    """First activity, in days before as_of (uniform range)."""
    end_days: tuple[int, int]
    """Last activity, in days before as_of (uniform range, clipped to after the start)."""
    open_rate: tuple[float, float]
    """Beta(a, b) parameters of the person's email open rate."""


PERSONAS: tuple[Persona, ...] = (
    Persona("loyal", 0.10, 0.95, 0.90, 0.0, 1.0, 0.90, 1, 3, 10.0, 4, 12, 2.0, 0.25, (400, 1095), (0, 20), (5.0, 4.0)),
    Persona("regular", 0.20, 0.70, 0.70, 0.0, 1.0, 0.75, 1, 3, 6.0, 2, 4, 0.6, 0.12, (120, 1095), (0, 90), (2.5, 4.0)),
    Persona("one_off", 0.14, 0.35, 0.40, 0.0, 1.0, 0.50, 1, 2, 3.0, 1, 1, 0.1, 0.08, (5, 1095), (0, 0), (1.0, 5.0)),
    Persona(
        "churned", 0.12, 0.65, 0.60, 0.0, 1.0, 0.70, 1, 2, 5.0, 1, 3, 0.3, 0.15, (600, 1095), (400, 560), (1.0, 6.0)
    ),
    Persona("prospect", 0.16, 0.45, 0.20, 0.0, 0.30, 0.80, 0, 2, 7.0, 0, 0, 0.0, 0.03, (5, 730), (0, 45), (2.0, 5.0)),
    Persona(
        "in_store", 0.08, 1.00, 1.00, 0.45, 0.0, 0.35, 0, 0, 0.0, 0, 0, 4.0, 0.05, (30, 1095), (0, 200), (2.0, 6.0)
    ),
    Persona(
        "anonymous_visitor", 0.20, 0.0, 0.0, 0.0, 0.0, 0.0, 1, 1, 3.0, 0, 0, 0.0, 0.0, (1, 365), (0, 120), (1.0, 1.0)
    ),
)

PERSONA_NAMES: tuple[str, ...] = tuple(p.name for p in PERSONAS)
LOYAL = PERSONA_NAMES.index("loyal")
ONE_OFF = PERSONA_NAMES.index("one_off")
PROSPECT = PERSONA_NAMES.index("prospect")
ANONYMOUS = PERSONA_NAMES.index("anonymous_visitor")


def persona_column(name: str) -> np.ndarray:
    """One persona attribute as an array indexed by persona code (for vectorised lookups)."""
    if name not in {f.name for f in fields(Persona)}:
        raise KeyError(name)
    return np.array([getattr(p, name) for p in PERSONAS])


def persona_shares() -> np.ndarray:
    shares = persona_column("share").astype(float)
    return shares / shares.sum()
