"""Staging and identity resolution on the generated sample (the session's built warehouse)."""

from __future__ import annotations

from pathlib import Path

import phonenumbers

from cdp.identity_accuracy import score
from cdp.warehouse import connect

PROFILE_CONTRACT = [
    ("profile_id", "VARCHAR"),
    ("email", "VARCHAR"),
    ("phone", "VARCHAR"),
    ("first_name", "VARCHAR"),
    ("last_name", "VARCHAR"),
    ("city", "VARCHAR"),
    ("country", "VARCHAR"),
    ("postal_code", "VARCHAR"),
    ("first_seen_at", "TIMESTAMP"),
    ("last_seen_at", "TIMESTAMP"),
]


def test_sql_phone_normalisation_agrees_with_libphonenumber(built_warehouse: Path):
    """Staging parses phones in SQL; libphonenumber is the reference. For every CRM and shop
    phone: where libphonenumber finds a valid number in the record's country, staging gives
    the same E.164; where staging gives NULL, the value is junk or invalid."""
    with connect(built_warehouse, read_only=True) as con:
        rows = con.execute(
            """
            select raw.phone, stg.phone, coalesce(stg.country, 'US')
            from raw.crm_contacts as raw
            inner join staging.stg_crm__contacts as stg using (contact_id)
            where raw.phone is not null
            union all
            select raw.phone, stg.phone, coalesce(stg.country, 'US')
            from raw.shop_customers as raw
            inner join staging.stg_shop__customers as stg using (customer_id)
            where raw.phone is not null
            """
        ).fetchall()
        blocklist = {
            value
            for (value,) in con.execute(
                "select identifier_value from identifier_blocklist where identifier_type = 'phone'"
            ).fetchall()
        }
    assert len(rows) > 1000
    disagreements = []
    for raw_phone, staged, country in rows:
        try:
            parsed = phonenumbers.parse(raw_phone, country)
            reference = (
                phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
                if phonenumbers.is_valid_number(parsed)
                else None
            )
        except phonenumbers.NumberParseException:
            reference = None
        if reference in blocklist:  # e.g. +44 1234 567890 is a real Bedford number, and a classic placeholder
            reference = None
        if staged != reference:
            disagreements.append((country, staged, reference))
    # every row must agree; show a few (normalised values only) if not
    assert not disagreements, f"{len(disagreements)} of {len(rows)} differ, e.g. {disagreements[:3]}"


def test_identity_resolution_scores_against_ground_truth(built_warehouse: Path):
    report = score(built_warehouse)
    assert report.records > 10_000
    assert report.precision >= 0.99, report
    assert report.recall >= 0.99, report
    # every record with a usable identifier resolved; what is left are anonymous till sales
    unresolved = {table: records - resolved for table, records, resolved in report.by_table if resolved < records}
    assert set(unresolved) <= {"pos_transactions"}, unresolved


def test_junk_and_shared_identifiers_never_link_people(built_warehouse: Path):
    with connect(built_warehouse, read_only=True) as con:
        # no profile holds two real people's CRM/shop records
        (over_merged,) = con.execute(
            """
            select count(*) from (
                select rp.profile_id
                from profile_source_records as rp
                inner join ground_truth.record_person as gt
                    on gt.record_id = rp.record_id
                    and gt.source_table = case rp.source when 'crm' then 'crm_contacts' when 'shop' then 'shop_customers' end
                where rp.source in ('crm', 'shop')
                group by rp.profile_id
                having count(distinct gt.person_id) > 1
            )
            """
        ).fetchall()[0]
        shared = dict(
            con.execute(
                "select identifier_type, count(*) from identity_guard_decisions where is_shared group by 1"
            ).fetchall()
        )
        blocklisted_in_profiles = con.execute(
            """
            select count(*) from profile_identifiers
            where identifier_value in (select identifier_value from identifier_blocklist)
            """
        ).fetchall()[0][0]
    assert over_merged == 0
    # the sample has family phones and shared devices; the guard caught them
    assert shared.get("phone", 0) > 0 and shared.get("anonymous_id", 0) > 0, shared
    assert blocklisted_in_profiles == 0


def test_profiles_follow_the_data_contract(built_warehouse: Path):
    with connect(built_warehouse, read_only=True) as con:
        columns = con.execute(
            """
            select column_name, data_type from information_schema.columns
            where table_schema = 'main' and table_name = 'profiles' order by ordinal_position
            """
        ).fetchall()
        people, profiles = con.execute(
            "select (select count(*) from ground_truth.people), (select count(*) from profiles)"
        ).fetchall()[0]
    assert columns == PROFILE_CONTRACT
    # one profile per person, give or take people with no usable identifier at all
    assert 0.97 * people <= profiles <= people


# the staging views that type each kind the identifier_blocklist seed holds
BLOCKLIST_KINDS = {
    "phone": ("stg_crm__contacts", "stg_shop__customers", "stg_pos__transactions"),
    "email": ("stg_crm__contacts", "stg_shop__customers"),
    "loyalty_card_id": ("stg_crm__contacts", "stg_pos__transactions"),
    "customer_id": ("stg_shop__customers", "stg_shop__orders"),
}


def test_the_blocklist_seed_is_read_as_the_user_edits_it(built_warehouse: Path, tmp_path: Path):
    """The staging views read the identifier_blocklist seed when queried. For every kind it holds: a
    value added to it is dropped wherever it was typed; a seed with no entry of that kind drops
    nothing; a blank line in a user's seed (a NULL value) blocks nothing, and does not make every
    identifier of its kind unknown."""
    import shutil

    path = tmp_path / "warehouse.duckdb"
    shutil.copy(built_warehouse, path)

    def staged(con, kind: str) -> dict[str, list]:
        return {
            view: sorted(value for (value,) in con.execute(f"select {kind} from staging.{view}").fetchall() if value)
            for view in BLOCKLIST_KINDS[kind]
        }

    with connect(path) as con:
        start = {kind: staged(con, kind) for kind in BLOCKLIST_KINDS}
        assert all(values for by_view in start.values() for values in by_view.values())
        for kind, before in start.items():
            entries = [
                value
                for (value,) in con.execute(
                    "select identifier_value from identifier_blocklist where identifier_type = ?", [kind]
                ).fetchall()
            ]
            assert entries, kind
            # a value the user adds disappears from every view that typed it, and nothing else changes
            # (the seed holds ids upper-cased, as staging compares them; emails and phones as staged)
            compared = str.upper if kind.endswith("_id") else str
            blocked = compared(before[BLOCKLIST_KINDS[kind][0]][0])
            con.execute("insert into identifier_blocklist values (?, ?, 'test: added by the user')", [kind, blocked])
            assert staged(con, kind) == {
                view: [v for v in values if compared(v) != blocked] for view, values in before.items()
            }

            # with no entry of this kind nothing disappears
            con.execute("delete from identifier_blocklist where identifier_type = ?", [kind])
            without_entries = staged(con, kind)
            for view, values in before.items():
                assert set(values) <= set(without_entries[view]), (kind, view)
            if kind == "phone":
                # the sample types a placeholder number the seed holds back: with no entry it comes through
                assert set(entries) & {v for values in without_entries.values() for v in values}

            # the seed restored, plus a blank line: every value is as at the start
            con.execute("insert into identifier_blocklist select ?, unnest(?), 'restored'", [kind, entries])
            con.execute("insert into identifier_blocklist values (?, null, 'blank')", [kind])
            assert staged(con, kind) == before, kind
