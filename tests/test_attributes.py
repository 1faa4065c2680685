"""profile_attributes on the generated sample (the session's built warehouse, read-only).

The rules themselves (RFM grid and score boundaries, lifecycle precedence, 30/90-day window
edges, consent conflicts) are dbt unit tests beside the models
(`dbt_project/models/attributes/_attributes__unit_tests.yml`); these tests check the built
table against the raw data a user would look at.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from cdp.warehouse import connect

AS_OF = datetime(2026, 11, 1)
"""The project's default var as_of, which the session build uses."""

RFM_SEGMENTS = {
    "Champions",
    "Loyal",
    "Potential Loyalist",
    "New",
    "Promising",
    "Need Attention",
    "At Risk",
    "Can't Lose",
    "Hibernating",
    "Lost",
}

ATTRIBUTES_CONTRACT = [
    ("profile_id", "VARCHAR"),
    ("lifecycle_stage", "VARCHAR"),
    ("rfm_segment", "VARCHAR"),
    ("channel_mix", "VARCHAR"),
    ("preferred_category", "VARCHAR"),
    ("cluster_name", "VARCHAR"),
    ("orders_count", "INTEGER"),
    ("online_orders_count", "INTEGER"),
    ("store_purchases_count", "INTEGER"),
    ("lifetime_value", "DECIMAL(18,2)"),
    ("average_order_value", "DECIMAL(18,2)"),
    ("online_share_of_value", "DECIMAL(5,4)"),
    ("purchase_frequency_per_month", "DECIMAL(12,4)"),
    ("days_since_last_purchase", "INTEGER"),
    ("churn_probability", "DOUBLE"),
    ("expected_value_90d", "DOUBLE"),
    ("cluster_id", "INTEGER"),
    ("recency_score", "INTEGER"),
    ("frequency_score", "INTEGER"),
    ("monetary_score", "INTEGER"),
    ("engagement_score", "INTEGER"),
    ("email_opens_30d", "INTEGER"),
    ("email_clicks_30d", "INTEGER"),
    ("email_opens_90d", "INTEGER"),
    ("email_clicks_90d", "INTEGER"),
    ("web_sessions_30d", "INTEGER"),
    ("web_sessions_90d", "INTEGER"),
    ("open_support_tickets", "INTEGER"),
    ("has_email_marketing_consent", "BOOLEAN"),
    ("has_ads_personalization_consent", "BOOLEAN"),
    ("is_deletion_requested", "BOOLEAN"),
    ("first_purchase_at", "TIMESTAMP"),
    ("last_purchase_at", "TIMESTAMP"),
    ("deletion_requested_at", "TIMESTAMP"),
    ("as_of", "TIMESTAMP"),
]


@pytest.fixture(scope="module")
def con(built_warehouse: Path):
    with connect(built_warehouse, read_only=True) as connection:
        yield connection


def _identifiers(con, identifier_type: str) -> dict[str, str]:
    """identifier value -> profile id, for one identifier type."""
    rows = con.execute(
        "select identifier_value, profile_id from profile_identifiers where identifier_type = ?",
        [identifier_type],
    ).fetchall()
    return dict(rows)


def test_contract_columns_and_types(con):
    columns = con.execute(
        """
        select column_name, data_type
        from information_schema.columns
        where table_schema = 'main' and table_name = 'profile_attributes'
        order by ordinal_position
        """
    ).fetchall()
    assert columns == ATTRIBUTES_CONTRACT


def test_one_row_per_profile_at_one_as_of(con):
    (profiles, attributes, distinct_ids, missing, as_ofs) = con.execute(
        """
        select
            (select count(*) from profiles),
            (select count(*) from profile_attributes),
            (select count(distinct profile_id) from profile_attributes),
            (select count(*) from profiles where profile_id not in (select profile_id from profile_attributes)),
            (select list(distinct as_of) from profile_attributes)
        """
    ).fetchall()[0]
    assert profiles > 1000
    assert attributes == distinct_ids == profiles
    assert missing == 0
    assert as_ofs == [AS_OF]


def test_lifetime_value_matches_a_recomputation_from_orders_and_till_sales(con):
    """Recompute counts and net value of every profile in Python from the order and till
    records (staging views over the raw tables: same rows, normalised identifiers),
    attributing them through profile_identifiers: orders by customer id; till sales by
    loyalty card, else by phone. Only completed orders count; every till amount counts."""
    by_customer = _identifiers(con, "customer_id")
    by_card = _identifiers(con, "loyalty_card_id")
    by_phone = _identifiers(con, "phone")

    completed: dict[str, list[Decimal]] = defaultdict(list)
    not_completed: dict[str, int] = defaultdict(int)
    for customer_id, status, amount, ordered_at in con.execute(
        "select customer_id, status, total_amount, ordered_at from staging.stg_shop__orders"
    ).fetchall():
        profile = by_customer.get(customer_id)
        if profile is None or ordered_at > AS_OF:
            continue
        if status == "completed":
            completed[profile].append(amount)
        else:
            not_completed[profile] += 1
    till: dict[str, list[Decimal]] = defaultdict(list)
    for card, phone, amount, occurred_at in con.execute(
        "select loyalty_card_id, phone, amount, occurred_at from staging.stg_pos__transactions"
    ).fetchall():
        profile = by_card.get(card) or by_phone.get(phone)
        if profile is not None and occurred_at <= AS_OF:
            till[profile].append(amount)

    # every profile is checked; make sure the sample has the cases that matter: people buying
    # online and in store with cancelled/refunded orders, and people who never bought.
    # (The sample has no till returns; the dbt unit test covers negative amounts.)
    mixed = [p for p in not_completed if till.get(p) and completed.get(p)]
    assert len(mixed) >= 3

    actual = {
        row[0]: row[1:]
        for row in con.execute(
            """
            select profile_id, lifetime_value, orders_count, online_orders_count, store_purchases_count
            from profile_attributes
            """
        ).fetchall()
    }
    assert sum(1 for value in actual.values() if value[1] == 0) >= 100
    differences = []
    for profile, values in actual.items():
        orders, sales = completed.get(profile, []), till.get(profile, [])
        purchases = [a for a in sales if a > 0]
        value = sum(orders, Decimal(0)) + sum(sales, Decimal(0))
        expected = (value, len(orders) + len(purchases), len(orders), len(purchases))
        if values != expected:
            differences.append((profile, values, expected))
    assert not differences, f"{len(differences)} profiles differ, e.g. {differences[:3]}"


def test_rfm_segments_only_from_the_list_and_only_for_purchasers(con):
    rows = con.execute(
        """
        select
            rfm_segment,
            orders_count > 0 as purchased,
            recency_score is not null and frequency_score is not null and monetary_score is not null as scored,
            count(*)
        from profile_attributes
        group by all
        """
    ).fetchall()
    segments = {segment for segment, purchased, _, _ in rows if purchased}
    assert segments <= RFM_SEGMENTS
    assert len(segments) >= 8, segments  # the sample's personas fill most of the grid
    for segment, purchased, scored, _ in rows:
        assert (segment is not None) == purchased == scored, (segment, purchased, scored)


def test_rfm_and_lifecycle_find_the_generators_loyal_and_churned_customers(con):
    """Customers the generator made loyal (frequent, recent) and churned (only long ago)
    land where a marketer would look for them."""
    rows = con.execute(
        """
        with order_persona as (
            select distinct events.profile_id, people.persona
            from profile_events as events
            inner join ground_truth.record_person as truth
                on truth.source_table = 'shop_orders' and truth.record_id = events.event_id
            inner join ground_truth.people as people on people.person_id = truth.person_id
            where events.source = 'shop'
        )
        select
            order_persona.persona,
            avg(case when attributes.lifecycle_stage = 'loyal' then 1.0 else 0 end),
            avg(case when attributes.lifecycle_stage = 'lapsed' then 1.0 else 0 end),
            avg(case when attributes.rfm_segment in ('Champions', 'Loyal') then 1.0 else 0 end)
        from order_persona
        inner join profile_attributes as attributes on attributes.profile_id = order_persona.profile_id
        where attributes.orders_count > 0 and order_persona.persona in ('loyal', 'churned')
        group by all
        """
    ).fetchall()
    shares = {persona: (loyal, lapsed, top) for persona, loyal, lapsed, top in rows}
    assert shares["loyal"][0] >= 0.8 and shares["loyal"][2] >= 0.8, shares
    assert shares["churned"][1] >= 0.9 and shares["churned"][2] <= 0.05, shares


def test_every_deletion_request_erases_the_profile_holding_that_identifier(con):
    """Issue 13 changed this: a deletion request no longer flags the profile, the build erases it.
    Each request resolves to the profile holding its identifier (privacy_erasures), that profile is
    gone from profile_attributes, nobody left carries the flag, and the processed requests have left
    the staging view (their tombstones keep them out)."""
    requests = {request_id for (request_id,) in con.execute("select request_id from raw.deletion_requests").fetchall()}
    erasures = dict(con.execute("select request_id, profile_id from privacy_erasures where source = 'raw'").fetchall())
    assert requests and set(erasures) == requests
    assert None not in erasures.values(), "a deletion request matches no profile"
    remaining = con.execute(
        "select count(*) from profile_attributes where profile_id in (select profile_id from privacy_erasures)"
    ).fetchall()
    assert remaining == [(0,)]
    assert con.execute("select count(*) from profile_attributes where is_deletion_requested").fetchall() == [(0,)]
    assert con.execute("select count(*) from staging.stg_privacy__deletion_requests").fetchall() == [(0,)]


def test_consent_revocations_are_reflected(con):
    """Recompute the consent rule from the consent events: per identifier the latest event
    decides (a revocation wins a tie), and a profile consents only when no identifier's
    latest event is a revocation. The sample has grants later revoked (unsubscribes,
    complaints, ads opt-outs), so the revocation path is exercised."""
    owner = {}
    for kind in ("email", "phone", "customer_id"):
        owner.update({(kind, value): profile for value, profile in _identifiers(con, kind).items()})
    latest: dict[tuple, tuple] = {}
    for kind, value, purpose, granted, recorded_at in con.execute(
        """
        select identifier_type, identifier_value, purpose, coalesce(is_granted, false), recorded_at
        from staging.stg_privacy__consent_events
        where identifier_value is not null and (recorded_at <= ? or not coalesce(is_granted, false))
        """,
        [AS_OF],
    ).fetchall():
        key = (kind, value, purpose)
        candidate = (recorded_at, not granted)  # later wins; at the same instant a revocation wins
        if key not in latest or candidate > latest[key]:
            latest[key] = candidate
    decisions: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for (kind, value, purpose), (_, revoked) in latest.items():
        if (kind, value) in owner:
            decisions[(owner[(kind, value)], purpose)].append(not revoked)
    actual = {
        profile: (email, ads)
        for profile, email, ads in con.execute(
            "select profile_id, has_email_marketing_consent, has_ads_personalization_consent from profile_attributes"
        ).fetchall()
    }
    for profile, (email, ads) in actual.items():
        assert email == all(decisions.get((profile, "email_marketing"), [False])), profile
        assert ads == all(decisions.get((profile, "ads_personalization"), [False])), profile
    revoked = sum(not all(granted) for granted in decisions.values())
    assert revoked >= 20
    assert sum(email for email, _ in actual.values()) >= 100


def test_people_who_unsubscribed_or_complained_have_no_email_consent(con):
    (unsubscribed, still_consenting) = con.execute(
        """
        select count(*), count(*) filter (where attributes.has_email_marketing_consent)
        from profile_attributes as attributes
        where attributes.profile_id in (
            select profile_id from profile_events
            where source = 'email' and event_type in ('unsubscribed', 'complained')
        )
        """
    ).fetchall()[0]
    assert unsubscribed >= 20
    assert still_consenting == 0
