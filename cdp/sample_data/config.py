"""What the generator is asked to produce: size, seed, reference date, and how messy.

``NoiseConfig`` holds every injected-mess proportion in one place. The generator aims
at these numbers and the tests measure them back from the warehouse, so each field's
docstring names the population it is a share *of*: that is what a test divides by.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

DEFAULT_AS_OF = datetime(2026, 11, 1)


@dataclass(frozen=True)
class NoiseConfig:
    """Shares of injected mess. Every value is a fraction in [0, 1].

    The generator only puts mess where the record stays resolvable (a record that
    loses its email to a placeholder keeps a genuine phone or loyalty card, a family
    phone only lands on records that also carry a genuine email or card, ...). When
    the eligible pool is smaller than a target the share comes out lower, never higher.
    """

    email_case: float = 0.06
    """Of non-placeholder email values on crm_contacts, shop_customers, support_tickets
    and web identify events: written in mixed or upper case."""

    email_padding: float = 0.03
    """Of the same email values: surrounded by leading and/or trailing spaces."""

    phone_national_format: float = 0.35
    """Of non-placeholder phone values on crm_contacts, shop_customers and
    pos_transactions: national format such as ``(415) 555-2671`` or ``06 12 34 56 78``."""

    phone_international_format: float = 0.25
    """Of the same phone values: international but not E.164, e.g. ``+44 7700 900123``
    or ``0044 7700 900123``. The rest are E.164."""

    country_variant: float = 0.05
    """Of crm_contacts and shop_customers rows: country spelled ``us``, ``USA``,
    ``United Kingdom``, ``Deutschland``… instead of the ISO code."""

    duplicate_crm: float = 0.03
    """Of people with a CRM contact: entered a second time (extra contact_id)."""

    duplicate_shop: float = 0.02
    """Of people with a shop account: opened a second account (extra customer_id)."""

    missing_phone: float = 0.06
    """Of crm_contacts and shop_customers rows: phone is NULL."""

    missing_name: float = 0.03
    """Of crm_contacts and shop_customers rows: first_name and/or last_name is NULL."""

    missing_postal_code: float = 0.05
    """Of crm_contacts and shop_customers rows: postal_code is NULL."""

    junk_email: float = 0.01
    """Of crm_contacts rows: a placeholder email (``noemail@example.com``…) typed by a
    clerk for a customer who declined to give one."""

    junk_phone: float = 0.01
    """Of phone values on crm_contacts, shop_customers and pos_transactions: a
    placeholder phone (``0000000000``, ``1111111111``, ``1234567890``)."""

    shared_device: float = 0.01
    """Of people: identify on an anonymous_id (device) that 1-2 household members also
    identify on, each with their own customer_id."""

    family_phone: float = 0.03
    """Of people: their CRM/shop records carry one phone shared by 2-4 household members."""

    email_change: float = 0.03
    """Of people with both a CRM contact and a shop account: changed email. The CRM and
    early email/web events keep the old one; the shop account has the new one."""

    late_event: float = 0.02
    """Of web_events, email_events and pos_transactions rows: loaded more than a day
    after they occurred (loaded_at - occurred_at > 1 day)."""

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"NoiseConfig.{name} must be a fraction in [0, 1], got {value!r}")
        if self.phone_national_format + self.phone_international_format > 1.0:
            raise ValueError("NoiseConfig: phone_national_format + phone_international_format must not exceed 1")

    def to_json(self) -> str:
        """Stable JSON (sorted keys) so ground_truth.generation_info is deterministic."""
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class GeneratorConfig:
    """One generator run. Same config (seed and chunk_size included) -> same warehouse content."""

    people: int = 10_000
    seed: int = 42
    as_of: datetime = DEFAULT_AS_OF
    chunk_size: int = 20_000
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    history_days: int = 3 * 365
    """How far before ``as_of`` the oldest activity may lie."""

    def __post_init__(self) -> None:
        if self.people < 1:
            raise ValueError(f"GeneratorConfig.people must be at least 1, got {self.people}")
        if self.chunk_size < 100:
            raise ValueError(f"GeneratorConfig.chunk_size must be at least 100, got {self.chunk_size}")
        if self.history_days < 60:
            raise ValueError(f"GeneratorConfig.history_days must be at least 60, got {self.history_days}")
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"GeneratorConfig.seed must be a non-negative 64-bit integer, got {self.seed}")

    @property
    def as_of_utc(self) -> datetime:
        """``as_of`` as a naive UTC datetime (the warehouse stores naive UTC timestamps)."""
        if self.as_of.tzinfo is None:
            return self.as_of
        return self.as_of.astimezone(UTC).replace(tzinfo=None)

    @property
    def as_of_epoch(self) -> int:
        """``as_of`` in whole seconds since 1970-01-01 UTC."""
        return int((self.as_of_utc - datetime(1970, 1, 1)).total_seconds())

    @property
    def chunk_count(self) -> int:
        return -(-self.people // self.chunk_size)
