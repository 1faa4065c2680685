"""The sample-data generator: contract shape, determinism, ground truth, mess and behaviour.

Proportions are measured from the raw tables themselves (not from the generator's own
bookkeeping) and compared with NoiseConfig; ground_truth.noise is then checked against
the same measurements. A small connected-components resolver at the end proves the
data is resolvable the way README ("Identity resolution") says identity resolution works.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import phonenumbers
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from cdp.sample_data.generator import GenerationSummary, GeneratorConfig, NoiseConfig, generate
from cdp.sample_data.identifiers import national_numbers

AS_OF = datetime(2026, 11, 1)
PEOPLE = 3_000
NOISE = NoiseConfig()

# The public data contract (README, "The data contract"), written out independently of the generator's schema
# module, plus the columns the generator adds after the contract ones.
CONTRACT: dict[str, list[tuple[str, str]]] = {
    "crm_contacts": [
        ("contact_id", "VARCHAR"), ("email", "VARCHAR"), ("phone", "VARCHAR"), ("first_name", "VARCHAR"),
        ("last_name", "VARCHAR"), ("city", "VARCHAR"), ("country", "VARCHAR"), ("postal_code", "VARCHAR"),
        ("birth_date", "DATE"), ("loyalty_card_id", "VARCHAR"), ("created_at", "TIMESTAMP"),
        ("updated_at", "TIMESTAMP"),
    ],
    "shop_customers": [
        ("customer_id", "VARCHAR"), ("email", "VARCHAR"), ("phone", "VARCHAR"), ("first_name", "VARCHAR"),
        ("last_name", "VARCHAR"), ("city", "VARCHAR"), ("country", "VARCHAR"), ("postal_code", "VARCHAR"),
        ("created_at", "TIMESTAMP"), ("updated_at", "TIMESTAMP"),
    ],
    "shop_orders": [
        ("order_id", "VARCHAR"), ("customer_id", "VARCHAR"), ("ordered_at", "TIMESTAMP"), ("status", "VARCHAR"),
        ("total_amount", "DECIMAL(12,2)"), ("currency", "VARCHAR"),
    ],
    "shop_order_items": [
        ("order_id", "VARCHAR"), ("line_number", "INTEGER"), ("product_id", "VARCHAR"),
        ("product_category", "VARCHAR"), ("quantity", "INTEGER"), ("unit_price", "DECIMAL(12,2)"),
    ],
    "web_events": [
        ("event_id", "VARCHAR"), ("anonymous_id", "VARCHAR"), ("user_id", "VARCHAR"), ("email", "VARCHAR"),
        ("event_type", "VARCHAR"), ("properties", "VARCHAR"), ("occurred_at", "TIMESTAMP"), ("loaded_at", "TIMESTAMP"),
    ],
    "email_events": [
        ("event_id", "VARCHAR"), ("email", "VARCHAR"), ("event_type", "VARCHAR"), ("campaign_id", "VARCHAR"),
        ("occurred_at", "TIMESTAMP"), ("loaded_at", "TIMESTAMP"),
    ],
    "pos_transactions": [
        ("transaction_id", "VARCHAR"), ("store_id", "VARCHAR"), ("loyalty_card_id", "VARCHAR"), ("phone", "VARCHAR"),
        ("amount", "DECIMAL(12,2)"), ("occurred_at", "TIMESTAMP"), ("loaded_at", "TIMESTAMP"),
    ],
    "support_tickets": [
        ("ticket_id", "VARCHAR"), ("email", "VARCHAR"), ("category", "VARCHAR"), ("status", "VARCHAR"),
        ("opened_at", "TIMESTAMP"),
    ],
    "consent_events": [
        ("identifier_type", "VARCHAR"), ("identifier_value", "VARCHAR"), ("purpose", "VARCHAR"),
        ("granted", "BOOLEAN"), ("recorded_at", "TIMESTAMP"), ("source", "VARCHAR"), ("consent_id", "VARCHAR"),
    ],
    "deletion_requests": [
        ("request_id", "VARCHAR"), ("identifier_type", "VARCHAR"), ("identifier_value", "VARCHAR"),
        ("requested_at", "TIMESTAMP"),
    ],
}  # fmt: skip
GROUND_TRUTH = {
    "people": ["person_id", "first_name", "last_name", "email", "phone_e164", "country", "persona", "household_id"],
    "record_person": ["source_table", "record_id", "person_id"],
    "generation_info": ["seed", "people", "as_of", "chunk_size", "noise"],
    "noise": ["kind", "source_table", "record_id", "person_id"],
}
KEYS = {
    "crm_contacts": "contact_id",
    "shop_customers": "customer_id",
    "shop_orders": "order_id",
    "web_events": "event_id",
    "email_events": "event_id",
    "pos_transactions": "transaction_id",
    "support_tickets": "ticket_id",
    "consent_events": "consent_id",
    "deletion_requests": "request_id",
}
JUNK_EMAILS = ("test@test.com", "noemail@example.com", "none@none.com")
JUNK_PHONES = ("0000000000", "1111111111", "1234567890")
COUNTRY = {
    "us": "US", "usa": "US", "united states": "US", "gb": "GB", "uk": "GB", "united kingdom": "GB",
    "de": "DE", "germany": "DE", "deutschland": "DE", "fr": "FR", "fra": "FR", "france": "FR",
}  # fmt: skip


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationSummary]:
    path = tmp_path_factory.mktemp("generator") / "cdp.duckdb"
    summary = generate(
        GeneratorConfig(people=PEOPLE, seed=42, as_of=AS_OF, chunk_size=1_000), warehouse=path, progress=False
    )
    return path, summary


@pytest.fixture(scope="module")
def con(warehouse: tuple[Path, GenerationSummary]) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(warehouse[0]), read_only=True)
    yield connection
    connection.close()


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def scalar(con: duckdb.DuckDBPyConnection, sql: str):
    return con.execute(sql).fetchall()[0][0]


def assert_share(measured: int, total: int, expected: float, *, cluster: float = 1.0, label: str) -> None:
    """Share within 5 binomial standard deviations (inflated when noise comes in clusters)."""
    assert total > 0, f"{label}: nothing to measure"
    share = measured / total
    sd = math.sqrt(max(expected * (1 - expected), 1e-9) * cluster / total)
    assert abs(share - expected) <= 5 * sd + 0.002, (
        f"{label}: {measured}/{total} = {share:.4f}, expected {expected:.4f}"
    )


def e164(raw: str, country: str) -> str | None:
    try:
        number = phonenumbers.parse(raw.strip(), country)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def table_contents(path: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(path), read_only=True) as c:
        tables = rows(
            c,
            """select table_schema, table_name from information_schema.tables
                    where table_schema in ('raw', 'ground_truth') order by all""",
        )
        return {f"{s}.{t}": rows(c, f"select * from {s}.{t}") for s, t in tables}


# ---------------------------------------------------------------- API, shape, determinism


def test_summary_counts_match_the_warehouse(warehouse, con) -> None:
    _, summary = warehouse
    assert summary.people == PEOPLE
    assert summary.seconds > 0
    for table in CONTRACT:
        assert summary.rows_by_table[f"raw.{table}"] == scalar(con, f"select count(*) from raw.{table}") > 0
    assert scalar(con, "select count(*) from ground_truth.people") == PEOPLE
    raw_rows = sum(summary.rows_by_table[f"raw.{t}"] for t in CONTRACT)
    assert 12 <= raw_rows / PEOPLE <= 30, "about 20 raw rows per person"
    assert summary.rows_by_table["raw.web_events"] == max(summary.rows_by_table[f"raw.{t}"] for t in CONTRACT)


def test_contract_tables_and_columns_in_order_with_types(con) -> None:
    for table, expected in CONTRACT.items():
        actual = rows(
            con,
            f"select column_name, data_type from information_schema.columns "
            f"where table_schema = 'raw' and table_name = '{table}' order by ordinal_position",
        )
        assert actual[: len(expected)] == expected, table
    for table in ("web_events", "email_events", "pos_transactions"):
        assert ("loaded_at", "TIMESTAMP") in rows(
            con,
            f"""select column_name, data_type from information_schema.columns where table_schema = 'raw'
                    and table_name = '{table}'""",
        )
    for table, expected in GROUND_TRUTH.items():
        actual = [
            r[0]
            for r in rows(
                con,
                f"""select column_name from information_schema.columns where table_schema = 'ground_truth'
                        and table_name = '{table}' order by ordinal_position""",
            )
        ]
        assert actual[: len(expected)] == expected, table


def test_keys_are_present_unique_and_prefixed(con) -> None:
    prefixes = set()
    for table, key in KEYS.items():
        total, distinct, nulls = rows(
            con, f"select count(*), count(distinct {key}), count(*) - count({key}) from raw.{table}"
        )[0]
        assert nulls == 0 and distinct == total, table
        prefix = {r[0] for r in rows(con, f"select distinct regexp_extract({key}, '^[A-Z]+') from raw.{table}")}
        assert len(prefix) == 1, table
        prefixes |= prefix
    assert len(prefixes) == len(KEYS), "every table has its own id prefix"
    total, distinct = rows(con, "select count(*), count(distinct (order_id, line_number)) from raw.shop_order_items")[0]
    assert total == distinct
    assert (
        scalar(
            con,
            """select count(*) from ground_truth.people where person_id in (select record_id
                    from ground_truth.record_person)""",
        )
        == 0
    )


def test_same_seed_same_content_and_other_seed_differs(tmp_path: Path) -> None:
    cfg = GeneratorConfig(people=1_000, seed=7, as_of=AS_OF, chunk_size=400)
    generate(cfg, warehouse=tmp_path / "a.duckdb", progress=True)
    generate(cfg, warehouse=tmp_path / "b.duckdb", progress=False)
    generate(
        GeneratorConfig(people=1_000, seed=8, as_of=AS_OF, chunk_size=400),
        warehouse=tmp_path / "c.duckdb",
        progress=False,
    )
    a, b, c = (table_contents(tmp_path / f"{name}.duckdb") for name in "abc")
    assert set(a) == {f"raw.{t}" for t in CONTRACT} | {f"ground_truth.{t}" for t in GROUND_TRUTH}
    for table in a:
        assert a[table] == b[table], f"{table} differs between two runs with the same seed"
    differing = [t for t in a if a[t] != c[t] and t != "ground_truth.generation_info"]
    assert len(differing) == len(a) - 1, "a different seed changes every table"


def test_rerun_replaces_our_tables_and_leaves_others_alone(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    generate(GeneratorConfig(people=300, seed=1, chunk_size=100), warehouse=path, progress=False)
    with duckdb.connect(str(path)) as c:
        c.execute("create schema analytics")
        c.execute("create table analytics.keep_me as select 1 as x")
        c.execute("create table raw.custom_source as select 2 as y")
    summary = generate(GeneratorConfig(people=200, seed=1, chunk_size=100), warehouse=path, progress=False)
    with duckdb.connect(str(path), read_only=True) as c:
        assert scalar(c, "select x from analytics.keep_me") == 1
        assert scalar(c, "select y from raw.custom_source") == 2
        assert scalar(c, "select count(*) from ground_truth.people") == 200
        assert scalar(c, "select count(*) from raw.crm_contacts") == summary.rows_by_table["raw.crm_contacts"]
        assert scalar(c, "select count(*) from ground_truth.generation_info") == 1


def test_chunking_keeps_shape_and_households_whole(tmp_path: Path) -> None:
    whole = generate(
        GeneratorConfig(people=2_000, seed=3, chunk_size=2_000), warehouse=tmp_path / "whole.duckdb", progress=False
    )
    chunked = generate(
        GeneratorConfig(people=2_000, seed=3, chunk_size=300), warehouse=tmp_path / "chunked.duckdb", progress=False
    )
    for table in CONTRACT:
        if table == "deletion_requests":
            continue  # a handful of rows: too few to compare
        w, c = whole.rows_by_table[f"raw.{table}"], chunked.rows_by_table[f"raw.{table}"]
        assert abs(w - c) <= 0.15 * w + 10, f"{table}: {w} rows in one chunk vs {c} in seven"
    with duckdb.connect(str(tmp_path / "chunked.duckdb"), read_only=True) as c:
        assert scalar(c, "select count(*), from ground_truth.people") == 2_000
        assert rows(c, "select min(person_id), max(person_id) from ground_truth.people")[0] == (
            "P0000000001",
            "P0000002000",
        )
        straddling = scalar(
            c,
            """select count(*) from (
                 select household_id from ground_truth.people
                 group by household_id
                 having count(distinct (cast(substr(person_id, 2) as integer) - 1) // 300) > 1)""",
        )
        assert straddling == 0
        assert scalar(c, "select max(n) from (select count(*) n from ground_truth.people group by household_id)") >= 2


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="email_case"):
        NoiseConfig(email_case=1.5)
    with pytest.raises(ValueError, match="people"):
        GeneratorConfig(people=0)
    with pytest.raises(ValueError, match="chunk_size"):
        GeneratorConfig(chunk_size=10)


def test_generation_info_is_deterministic_config(con) -> None:
    seed, people, as_of, chunk_size, noise = rows(
        con, "select seed, people, as_of, chunk_size, noise from ground_truth.generation_info"
    )[0]
    assert (seed, people, as_of, chunk_size) == (42, PEOPLE, AS_OF, 1_000)
    assert noise == NOISE.to_json()


# ---------------------------------------------------------------- ground truth consistency


def test_every_keyed_row_is_mapped_exactly_once(con) -> None:
    for table, key in KEYS.items():
        mapped, distinct = rows(
            con,
            f"""select count(*), count(distinct record_id) from ground_truth.record_person
                    where source_table = '{table}'""",
        )[0]
        assert mapped == distinct == scalar(con, f"select count(*) from raw.{table}"), table
        orphans = scalar(
            con,
            f"""select count(*) from ground_truth.record_person rp
                where source_table = '{table}' and not exists (select 1 from raw.{table} r
                    where r.{key} = rp.record_id)""",
        )
        assert orphans == 0, table
    assert (
        scalar(
            con,
            "select count(*) from ground_truth.record_person where source_table not in ("
            + ", ".join(f"'{t}'" for t in KEYS)
            + ")",
        )
        == 0
    )
    unknown = scalar(
        con,
        """select count(*) from ground_truth.record_person where person_id not in (select person_id
                from ground_truth.people)""",
    )
    assert unknown == 0


def test_foreign_keys_point_to_the_same_person(con) -> None:
    mismatched_orders = scalar(
        con,
        """select count(*) from raw.shop_orders o
           join ground_truth.record_person op on op.source_table = 'shop_orders' and op.record_id = o.order_id
           left join ground_truth.record_person cp on cp.source_table = 'shop_customers'
               and cp.record_id = o.customer_id
           where cp.person_id is distinct from op.person_id""",
    )
    assert mismatched_orders == 0
    mismatched_events = scalar(
        con,
        """select count(*) from raw.web_events w
           join ground_truth.record_person wp on wp.source_table = 'web_events' and wp.record_id = w.event_id
           left join ground_truth.record_person cp on cp.source_table = 'shop_customers' and cp.record_id = w.user_id
           where w.user_id is not null and cp.person_id is distinct from wp.person_id""",
    )
    assert mismatched_events == 0
    assert scalar(con, "select count(*) from raw.web_events where user_id is not null") > 0
    card_owners = rows(
        con,
        """select loyalty_card_id, count(distinct rp.person_id) from (
               select 'crm_contacts' t, contact_id id, loyalty_card_id from raw.crm_contacts
               union all select 'pos_transactions', transaction_id, loyalty_card_id from raw.pos_transactions)
           join ground_truth.record_person rp on rp.source_table = t and rp.record_id = id
           where loyalty_card_id is not null group by 1""",
    )
    assert card_owners and all(n == 1 for _, n in card_owners)
    orphan_cards = scalar(
        con,
        """select count(*) from raw.pos_transactions where loyalty_card_id not in (select loyalty_card_id
                from raw.crm_contacts where loyalty_card_id is not null)""",
    )
    assert orphan_cards == 0
    assert (
        scalar(
            con,
            "select count(*) from raw.shop_order_items where order_id not in (select order_id from raw.shop_orders)",
        )
        == 0
    )


EMAIL_RECORDS = """
    select 'crm_contacts' t, contact_id id, email from raw.crm_contacts
    union all select 'shop_customers', customer_id, email from raw.shop_customers
    union all select 'web_events', event_id, email from raw.web_events
    union all select 'email_events', event_id, email from raw.email_events
    union all select 'support_tickets', ticket_id, email from raw.support_tickets
    union all select 'consent_events', consent_id, identifier_value from raw.consent_events
        where identifier_type = 'email'
    union all select 'deletion_requests', request_id, identifier_value from raw.deletion_requests
        where identifier_type = 'email'
"""


def test_a_true_email_always_belongs_to_its_person(con) -> None:
    checked, wrong = rows(
        con,
        f"""select count(*), count(*) filter (where rp.person_id <> p.person_id)
            from ({EMAIL_RECORDS}) r
            join ground_truth.people p on p.email = lower(trim(r.email)) or p.previous_email = lower(trim(r.email))
            join ground_truth.record_person rp on rp.source_table = r.t and rp.record_id = r.id""",
    )[0]
    assert checked > 0.9 * scalar(con, f"select count(email) from ({EMAIL_RECORDS}) where email not in {JUNK_EMAILS}")
    assert wrong == 0
    unknown = scalar(
        con,
        f"""select count(*) from ({EMAIL_RECORDS}) r where r.email is not null
            and lower(trim(r.email)) not in {JUNK_EMAILS}
            and lower(trim(r.email)) not in (select email from ground_truth.people)
            and lower(trim(r.email)) not in (select previous_email from ground_truth.people
                where previous_email is not null)""",
    )
    assert unknown == 0, "every non-placeholder email is someone's current or previous email"


def test_noise_ledger_points_at_real_rows_of_the_right_person(con) -> None:
    for table, key in KEYS.items():
        wrong = scalar(
            con,
            f"""select count(*) from ground_truth.noise n
                left join raw.{table} r on r.{key} = n.record_id
                left join ground_truth.record_person rp on rp.source_table = n.source_table
                    and rp.record_id = n.record_id
                where n.source_table = '{table}' and (r.{key} is null or rp.person_id is distinct from n.person_id)""",
        )
        assert wrong == 0, table
    kinds = {r[0] for r in rows(con, "select distinct kind from ground_truth.noise")}
    assert kinds >= {
        "email_case", "email_padding", "phone_national_format", "duplicate_record", "missing_value", "junk_email",
        "junk_phone", "shared_device", "family_phone", "email_change", "late_event",
    }  # fmt: skip


# ---------------------------------------------------------------- timing and commerce


def test_nothing_happens_after_as_of(con) -> None:
    columns = rows(
        con,
        """select table_name, column_name from information_schema.columns where table_schema = 'raw'
                and data_type = 'TIMESTAMP'""",
    )
    assert len(columns) == 14
    for table, column in columns:
        assert con.execute(f"select count(*) from raw.{table} where {column} > ?", [AS_OF]).fetchall()[0][0] == 0, (
            f"{table}.{column}"
        )
        assert scalar(con, f"select count(*) - count({column}) from raw.{table}") == 0, f"{table}.{column} has NULLs"
    for table in ("web_events", "email_events", "pos_transactions"):
        assert scalar(con, f"select count(*) from raw.{table} where loaded_at < occurred_at") == 0
    oldest = scalar(con, "select min(ordered_at) from raw.shop_orders")
    assert (AS_OF - oldest).days <= 3 * 365 + 1


def test_orders_statuses_and_totals(con) -> None:
    statuses = dict(rows(con, "select status, count(*) from raw.shop_orders group by 1"))
    assert set(statuses) == {"completed", "cancelled", "refunded"}
    assert statuses["completed"] > 0.8 * sum(statuses.values())
    wrong_totals = scalar(
        con,
        """select count(*) from raw.shop_orders o
           left join (select order_id, sum(quantity * unit_price) s, count(*) n from raw.shop_order_items group by 1) i
               using (order_id)
           where i.n is null or i.s <> o.total_amount""",
    )
    assert wrong_totals == 0
    assert rows(con, "select min(quantity), min(unit_price) from raw.shop_order_items")[0][0] >= 1
    lines_ok = scalar(
        con,
        """select bool_and(m = n) from (select max(line_number) m, count(*) n from raw.shop_order_items
                group by order_id)""",
    )
    assert lines_ok
    assert scalar(con, "select count(distinct product_category) from raw.shop_order_items") == 8


def test_web_events_carry_the_promised_properties(con) -> None:
    types = {r[0] for r in rows(con, "select distinct event_type from raw.web_events")}
    assert types >= {
        "page_viewed",
        "product_viewed",
        "product_searched",
        "product_added_to_cart",
        "checkout_started",
        "order_completed",
        "identify",
    }
    assert scalar(con, "select count(*) from raw.web_events where not json_valid(properties)") == 0
    assert (
        scalar(
            con,
            """select count(*) from raw.web_events where event_type = 'product_searched'
                    and coalesce(json_extract_string(properties, '$.query'), '') = ''""",
        )
        == 0
    )
    assert "running shoes" in {
        r[0]
        for r in rows(
            con,
            """select distinct json_extract_string(properties, '$.query') from raw.web_events
                    where event_type = 'product_searched'""",
        )
    }
    missing_product = scalar(
        con,
        """select count(*) from raw.web_events where event_type = 'product_added_to_cart'
           and (json_extract_string(properties, '$.product_id') is null
               or json_extract_string(properties, '$.category') is null)""",
    )
    assert missing_product == 0
    completed, matching = rows(
        con,
        """select count(*), count(o.order_id) filter (where o.customer_id = w.user_id)
           from raw.web_events w left
               join raw.shop_orders o on o.order_id = json_extract_string(w.properties, '$.order_id')
           where w.event_type = 'order_completed'""",
    )[0]
    assert completed == matching > 0, "every order_completed names a real order of the logged-in customer"
    identify_without_identity = scalar(
        con, "select count(*) from raw.web_events where event_type = 'identify' and user_id is null and email is null"
    )
    assert identify_without_identity == 0
    assert (
        scalar(
            con,
            """select count(*) from raw.web_events where event_type = 'identify' and user_id is null
                    and email is not null""",
        )
        > 0
    )
    assert (
        scalar(
            con,
            """select count(*) from raw.web_events where event_type = 'identify' and user_id is not null
                    and email is not null""",
        )
        > 0
    )


# ---------------------------------------------------------------- identifiers and mess


def _phone_rows(con) -> list[tuple[str, str, str, str, str, str, str]]:
    """(table, record_id, raw phone, person's country, person's own E.164, person_id, household_id)."""
    return rows(
        con,
        """select r.t, r.id, r.phone, p.country, p.phone_e164, p.person_id, p.household_id from (
               select 'crm_contacts' t, contact_id id, phone from raw.crm_contacts
               union all select 'shop_customers', customer_id, phone from raw.shop_customers
               union all select 'pos_transactions', transaction_id, phone from raw.pos_transactions) r
           join ground_truth.record_person rp on rp.source_table = r.t and rp.record_id = r.id
           join ground_truth.people p using (person_id)
           where r.phone is not null""",
    )


def test_phones_are_valid_numbers_in_the_promised_formats(con) -> None:
    phones = _phone_rows(con)
    family = {r[0] for r in rows(con, "select record_id from ground_truth.noise where kind = 'family_phone'")}
    household_phones: dict[str, set[str]] = defaultdict(set)
    for household, phone in rows(con, "select household_id, phone_e164 from ground_truth.people"):
        household_phones[household].add(phone)
    national = international = junk = 0
    for _table, record_id, raw, country, own, _person, household in phones:
        if raw in JUNK_PHONES:
            junk += 1
            continue
        normalised = e164(raw, country)
        assert normalised is not None, f"{raw!r} ({country}) is not a valid number"
        if record_id in family:
            assert normalised in household_phones[household], "a family phone is a household member's phone"
        else:
            assert normalised == own, f"{raw!r} is not the person's own phone"
        assert not (country == "US" and normalised[5:8] == "555"), "no fictional 555 exchanges"
        if raw.startswith("+") and " " not in raw:
            continue
        if raw.startswith(("+", "00")):
            international += 1
        else:
            national += 1
            assert re.fullmatch(r"\(\d{3}\) \d{3}-\d{4}|\d{3}-\d{3}-\d{4}|0[\d /]+", raw), raw
    genuine = len(phones) - junk
    assert_share(national, genuine, NOISE.phone_national_format, label="national-format phones")
    assert_share(international, genuine, NOISE.phone_international_format, label="international non-E.164 phones")
    assert_share(junk, len(phones), NOISE.junk_phone, label="placeholder phones")
    ledger = dict(
        rows(
            con,
            """select kind, count(*) from ground_truth.noise
                    where kind in ('phone_national_format', 'phone_international_format', 'junk_phone') group by 1""",
        )
    )
    assert (ledger["phone_national_format"], ledger["phone_international_format"], ledger["junk_phone"]) == (
        national,
        international,
        junk,
    )


def test_email_spelling_noise(con) -> None:
    population = """
        select email from raw.crm_contacts union all select email from raw.shop_customers
        union all select email from raw.support_tickets
        union all select email from raw.web_events where event_type = 'identify'"""
    total, cased, padded = rows(
        con,
        f"""select count(*), count(*) filter (where trim(email) <> lower(trim(email))),
                   count(*) filter (where email <> trim(email))
            from ({population}) where email is not null and lower(trim(email)) not in {JUNK_EMAILS}""",
    )[0]
    assert_share(cased, total, NOISE.email_case, label="mixed-case emails")
    assert_share(padded, total, NOISE.email_padding, label="padded emails")
    ledger = dict(
        rows(
            con,
            "select kind, count(*) from ground_truth.noise where kind in ('email_case', 'email_padding') group by 1",
        )
    )
    assert ledger == {"email_case": cased, "email_padding": padded}
    assert scalar(con, "select count(*) from raw.email_events where email <> lower(trim(email))") == 0, (
        "the ESP stores clean addresses"
    )


def test_duplicates_and_missing_values(con) -> None:
    for table, share in (("crm_contacts", NOISE.duplicate_crm), ("shop_customers", NOISE.duplicate_shop)):
        records, people = rows(
            con,
            f"""select count(*), count(distinct person_id) from ground_truth.record_person
                    where source_table = '{table}'""",
        )[0]
        assert_share(records - people, people, share, label=f"duplicate {table}")
        ledger = scalar(
            con, f"select count(*) from ground_truth.noise where kind = 'duplicate_record' and source_table = '{table}'"
        )
        assert ledger == records - people
    profiles = """
        select phone, first_name, last_name, postal_code from raw.crm_contacts
            union all select phone, first_name, last_name, postal_code from raw.shop_customers"""
    total, no_phone, no_name, no_postal = rows(
        con,
        f"""select count(*), count(*) - count(phone), count(*) filter (where first_name is null or last_name is null),
                   count(*) - count(postal_code) from ({profiles})""",
    )[0]
    assert_share(no_phone, total, NOISE.missing_phone, label="missing phones")
    assert_share(no_name, total, NOISE.missing_name, label="missing names")
    assert_share(no_postal, total, NOISE.missing_postal_code, label="missing postal codes")
    messy = scalar(
        con,
        """select count(*) from (select country from raw.crm_contacts union all select country
                from raw.shop_customers) where country not in ('US', 'GB', 'DE', 'FR')""",
    )
    assert_share(messy, total, NOISE.country_variant, label="messy country spellings")
    unknown = {
        r[0]
        for r in rows(
            con,
            """select distinct lower(country) from raw.crm_contacts union select distinct lower(country)
                    from raw.shop_customers""",
        )
    } - set(COUNTRY)
    assert unknown == set()


def test_junk_identifiers_span_people_but_records_stay_linkable(con) -> None:
    crm_total, junk_email = rows(
        con, f"select count(*), count(*) filter (where email in {JUNK_EMAILS}) from raw.crm_contacts"
    )[0]
    assert_share(junk_email, crm_total, NOISE.junk_email, label="placeholder emails")
    assert scalar(con, "select count(*) from ground_truth.noise where kind = 'junk_email'") == junk_email
    people_per_junk = rows(
        con,
        f"""select count(distinct rp.person_id) from (
                select 'crm_contacts' t, contact_id id, email v from raw.crm_contacts where email in {JUNK_EMAILS}
                union all select 'crm_contacts', contact_id, phone from raw.crm_contacts where phone in {JUNK_PHONES}
                union all select 'shop_customers', customer_id, phone from raw.shop_customers
                    where phone in {JUNK_PHONES}
                union all select 'pos_transactions', transaction_id, phone from raw.pos_transactions
                    where phone in {JUNK_PHONES})
            join ground_truth.record_person rp on rp.source_table = t and rp.record_id = id""",
    )[0][0]
    assert people_per_junk > 10, "placeholders are typed for many different people"
    unlinkable = scalar(
        con,
        f"""select count(*) from (
                select email, phone, loyalty_card_id card from raw.crm_contacts
                union all select email, phone, null from raw.shop_customers
                union all select null, phone, loyalty_card_id from raw.pos_transactions)
            where (email in {JUNK_EMAILS} or phone in {JUNK_PHONES})
              and coalesce(card, '') = ''
              and (email is null or email in {JUNK_EMAILS})
              and (phone is null or phone in {JUNK_PHONES})""",
    )
    assert unlinkable == 0, "a record with a placeholder keeps a genuine identifier"


def test_shared_devices(con) -> None:
    shared = rows(
        con,
        """select w.anonymous_id, count(distinct rp.person_id), count(distinct p.household_id),
                  count(*) filter (where w.user_id is null)
           from raw.web_events w
           join ground_truth.record_person rp on rp.source_table = 'web_events' and rp.record_id = w.event_id
           join ground_truth.people p using (person_id)
           group by 1 having count(distinct rp.person_id) > 1""",
    )
    sharing_people = sum(n for _, n, _, _ in shared)
    assert_share(sharing_people, PEOPLE, NOISE.shared_device, cluster=2.5, label="people on shared devices")
    assert all(2 <= n <= 3 and households == 1 for _, n, households, _ in shared)
    assert all(anonymous == 0 for *_, anonymous in shared), "everyone's events on a shared device carry their user_id"
    ledger = scalar(con, "select count(distinct person_id) from ground_truth.noise where kind = 'shared_device'")
    assert ledger == sharing_people


def test_family_phones(con) -> None:
    owners: dict[str, set[str]] = defaultdict(set)
    households: dict[str, set[str]] = defaultdict(set)
    borrowed: set[str] = set()
    for table, _record_id, raw, country, own, person, household in _phone_rows(con):
        if table == "pos_transactions" or raw in JUNK_PHONES:
            continue
        phone = e164(raw, country)
        owners[phone].add(person)
        households[phone].add(household)
        if phone != own:
            borrowed.add(person)
    shared = {phone: people for phone, people in owners.items() if len(people) > 1}
    assert shared and all(2 <= len(people) <= 4 and len(households[phone]) == 1 for phone, people in shared.items())
    family_people = set().union(*shared.values()) | borrowed
    assert_share(len(family_people), PEOPLE, NOISE.family_phone, cluster=2.5, label="people with a family phone")
    ledger = {r[0] for r in rows(con, "select distinct person_id from ground_truth.noise where kind = 'family_phone'")}
    assert ledger == family_people


def test_email_changes(con) -> None:
    with_both = scalar(
        con,
        """select count(*) from (select person_id from ground_truth.record_person where source_table = 'crm_contacts'
           intersect select person_id from ground_truth.record_person where source_table = 'shop_customers')""",
    )
    changed = rows(
        con, "select person_id, email, previous_email from ground_truth.people where previous_email is not null"
    )
    assert_share(len(changed), with_both, NOISE.email_change, label="email changes")
    for person, current, previous in changed:
        crm = {
            r[0]
            for r in rows(
                con,
                f"""select lower(trim(email)) from raw.crm_contacts
                        join ground_truth.record_person on record_id = contact_id where person_id = '{person}'""",
            )
        }
        shop = {
            r[0]
            for r in rows(
                con,
                f"""select lower(trim(email)) from raw.shop_customers
                        join ground_truth.record_person on record_id = customer_id where person_id = '{person}'""",
            )
        }
        assert crm == {previous} and shop == {current}
        tie = scalar(
            con,
            f"""select count(*) from raw.web_events w join raw.shop_customers s on s.customer_id = w.user_id
                where lower(trim(w.email)) = '{previous}' and lower(trim(s.email)) = '{current}'""",
        )
        assert tie >= 1, "an identify event ties the old email to the customer_id"
    ledger = scalar(con, "select count(distinct person_id) from ground_truth.noise where kind = 'email_change'")
    assert ledger == len(changed)


def test_late_events(con) -> None:
    for table in ("web_events", "email_events", "pos_transactions"):
        total, late = rows(
            con, f"select count(*), count(*) filter (where loaded_at - occurred_at > interval 1 day) from raw.{table}"
        )[0]
        assert_share(late, total, NOISE.late_event, label=f"late {table}")
        assert (
            scalar(
                con, f"select count(*) from ground_truth.noise where kind = 'late_event' and source_table = '{table}'"
            )
            == late
        )


# ---------------------------------------------------------------- behaviour worth segmenting


def test_personas_behave_differently(con) -> None:
    stats = rows(
        con,
        """with o as (
               select rp.person_id, count(*) n, max(ordered_at) last
               from raw.shop_orders join ground_truth.record_person rp on rp.record_id = order_id group by 1)
           select p.persona, avg(coalesce(n, 0)), max(coalesce(n, 0)), max(last), min(last), count(n)
           from ground_truth.people p left join o using (person_id) group by 1""",
    )
    by_persona = {persona: rest for persona, *rest in stats}
    assert set(by_persona) == {"loyal", "regular", "one_off", "churned", "prospect", "in_store", "anonymous_visitor"}
    assert by_persona["loyal"][0] > by_persona["regular"][0] > by_persona["churned"][0] > 0
    assert by_persona["one_off"][1] == 1
    assert (AS_OF - by_persona["churned"][2]).days > 365, "churned people's orders are all old"
    assert (AS_OF - by_persona["loyal"][3]).days <= 45, "every loyal customer ordered recently"
    for persona in ("prospect", "in_store", "anonymous_visitor"):
        assert by_persona[persona][4] == 0, f"{persona} never orders online"
    anonymous_identified = scalar(
        con,
        """select count(*) from raw.web_events w join ground_truth.record_person rp on rp.record_id = w.event_id
           join ground_truth.people p using (person_id)
           where p.persona = 'anonymous_visitor' and (w.user_id is not null or w.email is not null)""",
    )
    assert anonymous_identified == 0


def test_searches_abandoned_carts_email_engagement_and_consent(con) -> None:
    searched_not_bought = con.execute(
        """with searches as (
               select rp.person_id, json_extract_string(properties, '$.query') q
               from raw.web_events w join ground_truth.record_person rp on rp.record_id = w.event_id
               where event_type = 'product_searched' and occurred_at >= ?::timestamp - interval 30 day),
           bought as (
               select distinct rp.person_id from raw.shop_orders o
               join ground_truth.record_person rp on rp.record_id = o.order_id
               join raw.shop_order_items i using (order_id)
               where i.product_category = 'running shoes')
           select count(distinct person_id) filter (where person_id not in (select person_id from bought)),
                  count(distinct person_id) filter (where person_id in (select person_id from bought))
           from searches where q like '%running shoes%'""",
        [AS_OF],
    ).fetchall()[0]
    assert searched_not_bought[0] > 0 and searched_not_bought[1] > 0
    abandoned = scalar(
        con,
        """select count(distinct anonymous_id) from raw.web_events
           where event_type in ('product_added_to_cart', 'checkout_started')
             and anonymous_id not in (select anonymous_id from raw.web_events where event_type = 'order_completed')""",
    )
    assert abandoned > 0
    email_types = dict(rows(con, "select event_type, count(*) from raw.email_events group by 1"))
    assert set(email_types) == {"sent", "delivered", "opened", "clicked", "bounced", "unsubscribed", "complained"}
    assert email_types["sent"] > email_types["delivered"] > email_types["opened"] > email_types["clicked"]
    open_rates = [r[0] for r in rows(
        con,
        """select count(*) filter (where event_type = 'opened') / count(*) filter (where event_type = 'delivered')
           from raw.email_events group by email having count(*) filter (where event_type = 'delivered') >= 3""",
    )]  # fmt: skip
    assert np.std(open_rates) > 0.15, "engagement varies by person"
    consent = {
        tuple(r) for r in rows(con, "select identifier_type, purpose, granted from raw.consent_events group by all")
    }
    assert {("email", "email_marketing", True), ("email", "email_marketing", False)} <= consent
    assert {("customer_id", "ads_personalization", True), ("customer_id", "ads_personalization", False)} <= consent
    assert {("phone", "ads_personalization", True), ("phone", "ads_personalization", False)} <= consent
    revoked_before_granted = scalar(
        con,
        """select count(*) from raw.consent_events r where not granted and not exists (
               select 1 from raw.consent_events g where g.granted and g.purpose = r.purpose
               and lower(g.identifier_value) = lower(r.identifier_value) and g.recorded_at <= r.recorded_at)""",
    )
    assert revoked_before_granted == 0
    unsubscribed = scalar(
        con,
        """select count(*) from raw.email_events e where event_type in ('unsubscribed', 'complained') and not exists (
               select 1 from raw.consent_events c where not c.granted and c.purpose = 'email_marketing'
               and c.identifier_value = e.email and c.recorded_at >= e.occurred_at)""",
    )
    assert unsubscribed == 0, "every opt-out in the ESP is a consent revocation"
    deletions = scalar(con, "select count(*) from raw.deletion_requests")
    assert 1 <= deletions <= 0.01 * PEOPLE


# ---------------------------------------------------------------- resolvability


def _normalise(kind: str, value: str | None, country: str | None) -> str | None:
    if value is None:
        return None
    if kind == "email":
        value = value.strip().lower()
        return None if value in JUNK_EMAILS else f"email:{value}"
    if kind == "phone":
        digits = re.sub(r"\D", "", value)
        if len(set(digits)) <= 1 or digits == "1234567890":
            return None
        normalised = e164(value, COUNTRY.get((country or "").lower(), "US"))
        return f"phone:{normalised}" if normalised else None
    return f"{kind}:{value}"


def test_data_is_resolvable_by_a_guarded_connected_components_resolver(con) -> None:
    precision, recall, scored_share = resolve_and_score(con)
    assert scored_share > 0.97, "almost every record carries an identifier"
    assert precision >= 0.99, f"pairwise precision {precision:.4f}"
    assert recall >= 0.99, f"pairwise recall {recall:.4f}"


def resolve_and_score(con: duckdb.DuckDBPyConnection) -> tuple[float, float, float]:
    """README's resolver ("Identity resolution") in miniature: normalise, drop junk, treat an anonymous_id or
    phone that joins several customers/emails as shared, link the rest, take components.
    Returns pairwise (precision, recall) over records that carry any identifier, and the
    share of records that do."""
    records: list[tuple[str, str, list[tuple[str, str | None]], str | None]] = []
    for row in rows(
        con, "select 'crm_contacts', contact_id, email, phone, loyalty_card_id, country from raw.crm_contacts"
    ):
        records.append((row[0], row[1], [("email", row[2]), ("phone", row[3]), ("card", row[4])], row[5]))
    for row in rows(con, "select 'shop_customers', customer_id, email, phone, country from raw.shop_customers"):
        records.append((row[0], row[1], [("customer", row[1]), ("email", row[2]), ("phone", row[3])], row[4]))
    for row in rows(con, "select 'shop_orders', order_id, customer_id from raw.shop_orders"):
        records.append((row[0], row[1], [("customer", row[2])], None))
    for row in rows(con, "select 'web_events', event_id, anonymous_id, user_id, email from raw.web_events"):
        records.append((row[0], row[1], [("device", row[2]), ("customer", row[3]), ("email", row[4])], None))
    for row in rows(con, "select 'email_events', event_id, email from raw.email_events"):
        records.append((row[0], row[1], [("email", row[2])], None))
    for row in rows(
        con,
        """select 'pos_transactions', transaction_id, loyalty_card_id, phone, substr(store_id, 1, 2)
                from raw.pos_transactions""",
    ):
        records.append((row[0], row[1], [("card", row[2]), ("phone", row[3])], row[4]))
    for row in rows(con, "select 'support_tickets', ticket_id, email from raw.support_tickets"):
        records.append((row[0], row[1], [("email", row[2])], None))
    for table, key in (("consent_events", "consent_id"), ("deletion_requests", "request_id")):
        for row in rows(con, f"select '{table}', {key}, identifier_type, identifier_value from raw.{table}"):
            kind = {"customer_id": "customer"}.get(row[2], row[2])
            records.append((row[0], row[1], [(kind, row[3])], None))

    keys = [[k for kind, value in ids if (k := _normalise(kind, value, country))] for _, _, ids, country in records]
    # Over-merge guard: a weak identifier (device, phone) seen with more than one customer or
    # more than one email is shared and does not link.
    strong: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for record_keys in keys:
        for weak in (k for k in record_keys if k.startswith(("device:", "phone:"))):
            for other in record_keys:
                if other.startswith(("customer:", "email:")):
                    strong[weak][other.split(":", 1)[0]].add(other)
    shared = {
        weak for weak, seen in strong.items()
        if len(seen["customer"]) > 1 or (not seen["customer"] and len(seen["email"]) > 1)
        or (weak.startswith("phone:") and len(seen["email"]) > 1)
    }  # fmt: skip
    linking = [[k for k in record_keys if k not in shared] for record_keys in keys]

    index: dict[str, int] = {}
    src, dst = [], []
    for i, record_keys in enumerate(linking):
        for k in record_keys:
            node = index.setdefault(k, len(records) + len(index))
            src.append(i)
            dst.append(node)
    size = len(records) + len(index)
    graph = coo_matrix((np.ones(len(src)), (src, dst)), shape=(size, size))
    _, component = connected_components(graph, directed=False)

    truth = {
        (t, r): p for t, r, p in rows(con, "select source_table, record_id, person_id from ground_truth.record_person")
    }
    scored = [i for i, record_keys in enumerate(keys) if record_keys]
    person = np.array([truth[(records[i][0], records[i][1])] for i in scored])
    cluster = component[scored]
    _, person_code = np.unique(person, return_inverse=True)

    def pairs(counts: np.ndarray) -> int:
        return int((counts * (counts - 1) // 2).sum())

    joint = np.unique(cluster.astype(np.int64) * (person_code.max() + 1) + person_code, return_counts=True)[1]
    true_positive = pairs(joint)
    precision = true_positive / pairs(np.unique(cluster, return_counts=True)[1])
    recall = true_positive / pairs(np.unique(person_code, return_counts=True)[1])
    return precision, recall, len(scored) / len(records)


def test_phone_plans_only_produce_valid_distinct_mobiles() -> None:
    """The number plans hold for any person number, not just the few the fixture uses."""
    rng = np.random.default_rng(0)
    person_no = np.unique(rng.integers(1, 20_000_000, 3_000))
    for code, (region, calling_code) in enumerate((("US", "1"), ("GB", "44"), ("DE", "49"), ("FR", "33"))):
        numbers = national_numbers(np.full(len(person_no), code), person_no)
        assert len(set(numbers.tolist())) == len(person_no)
        for nsn in numbers.tolist():
            parsed = phonenumbers.parse(f"+{calling_code}{nsn}")
            assert phonenumbers.is_valid_number(parsed), f"+{calling_code}{nsn}"
            assert phonenumbers.region_code_for_number(parsed) == region
            assert phonenumbers.number_type(parsed) in (
                phonenumbers.PhoneNumberType.MOBILE,
                phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
            )
