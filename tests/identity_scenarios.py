"""Small hand-built worlds that exercise identity resolution's hard cases.

Each function returns raw rows (see tests/raw_data.write_raw) plus what a correct
resolver must conclude, so the dbt scenario tests read as statements about people.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

T0 = datetime(2025, 1, 1)

CHAIN_RECORDS = 60  # records in the chain: each shares one identifier with the next


def chain_of_records(length: int = CHAIN_RECORDS, seed: int = 7) -> dict[str, list[dict]]:
    """Web sign-ins forming a path of identifiers C0–E0–C1–E1–C2–…: sign-in k carries
    identifier k and identifier k+1 (customer ids and emails alternating), so the whole
    chain is one person, reachable only by walking every link. Identifier values are
    shuffled so node ids do not follow the chain order (a naive min-label propagation
    would need one pass per link)."""
    rng = random.Random(seed)
    tokens = list(range(length + 1))
    rng.shuffle(tokens)
    path = [
        ("customer", f"CHAIN-C{tokens[i]:03d}") if i % 2 == 0 else ("email", f"chain{tokens[i]:03d}@chain.example.com")
        for i in range(length + 1)
    ]
    events = []
    for k in range(length):
        pair = dict([path[k], path[k + 1]])
        events.append(
            {
                "event_id": f"chain-ev-{k:03d}",
                "anonymous_id": None,
                "user_id": pair["customer"],
                "email": pair["email"],
                "event_type": "identify",
                "properties": "{}",
                "occurred_at": T0 + timedelta(minutes=k),
            }
        )
    # anonymous_id is NOT NULL in the source contract tests: give each sign-in its own device
    for k, event in enumerate(events):
        event["anonymous_id"] = f"chain-device-{k:03d}"
    return {"web_events": events}


def shared_device() -> dict[str, list[dict]]:
    """Two people with their own shop accounts sign in on the same household tablet."""
    return {
        "shop_customers": [
            {"customer_id": "SD-1", "email": "alice.shared@example.com", "country": "US", "created_at": T0},
            {"customer_id": "SD-2", "email": "bob.shared@example.com", "country": "US", "created_at": T0},
        ],
        "web_events": [
            {
                "event_id": "sd-1",
                "anonymous_id": "tablet-1",
                "user_id": "SD-1",
                "event_type": "identify",
                "properties": "{}",
                "occurred_at": T0,
            },
            {
                "event_id": "sd-2",
                "anonymous_id": "tablet-1",
                "user_id": "SD-2",
                "event_type": "identify",
                "properties": "{}",
                "occurred_at": T0 + timedelta(hours=1),
            },
            {
                "event_id": "sd-3",
                "anonymous_id": "tablet-1",
                "event_type": "page_viewed",
                "properties": "{}",
                "occurred_at": T0 + timedelta(hours=2),
            },
        ],
    }


def blocklisted_email() -> dict[str, list[dict]]:
    """Two strangers who both typed test@test.com into the CRM form."""
    return {
        "crm_contacts": [
            {
                "contact_id": "BL-1",
                "email": " TEST@test.com",
                "phone": "+1 212 555 0101",
                "loyalty_card_id": "LC-BL-1",
                "country": "US",
                "created_at": T0,
            },
            {
                "contact_id": "BL-2",
                "email": "test@test.com",
                "phone": "+1 312 555 0199",
                "loyalty_card_id": "LC-BL-2",
                "country": "US",
                "created_at": T0,
            },
        ]
    }


def email_change() -> dict[str, list[dict]]:
    """CRM knows the old email; the shop account has the new one; a sign-in ties them."""
    return {
        "crm_contacts": [
            {
                "contact_id": "EC-1",
                "email": "carol.old@example.com",
                "phone": "020 7946 0958",
                "country": "United Kingdom",
                "loyalty_card_id": "LC-EC-1",
                "created_at": T0,
            },
        ],
        "shop_customers": [
            {
                "customer_id": "EC-S1",
                "email": "carol.new@example.com",
                "country": "GB",
                "created_at": T0 + timedelta(days=300),
            },
        ],
        "web_events": [
            {
                "event_id": "ec-1",
                "anonymous_id": "carol-phone",
                "user_id": "EC-S1",
                "email": "Carol.Old@example.com ",
                "event_type": "identify",
                "properties": "{}",
                "occurred_at": T0 + timedelta(days=310),
            },
        ],
    }


def two_strangers_later_linked() -> tuple[dict[str, list[dict]], dict[str, list[dict]]]:
    """Build 1: an older person (CRM, 2024) and a newer one (shop, 2025), unrelated.
    Build 2 adds a sign-in showing the shop account belongs to the CRM person."""
    before = {
        "crm_contacts": [
            {"contact_id": "MG-1", "email": "dave@example.com", "country": "US", "created_at": datetime(2024, 3, 1)},
        ],
        "shop_customers": [
            {
                "customer_id": "MG-S1",
                "email": "dave.shop@example.com",
                "country": "US",
                "created_at": datetime(2025, 6, 1),
            },
        ],
    }
    after_extra = {
        "web_events": [
            {
                "event_id": "mg-1",
                "anonymous_id": "dave-laptop",
                "user_id": "MG-S1",
                "email": "dave@example.com",
                "event_type": "identify",
                "properties": "{}",
                "occurred_at": datetime(2025, 7, 1),
            },
        ]
    }
    return before, after_extra


def merge_worlds(*worlds: dict[str, list[dict]]) -> dict[str, list[dict]]:
    merged: dict[str, list[dict]] = {}
    for world in worlds:
        for table, rows in world.items():
            merged.setdefault(table, []).extend(rows)
    return merged
