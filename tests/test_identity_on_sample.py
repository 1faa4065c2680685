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


def test_the_blocklist_seed_is_read_as_the_user_edits_it(built_warehouse: Path, tmp_path: Path):
    """The staging views read the identifier_blocklist seed when queried. A number added to it is
    dropped wherever it was typed; a seed with no phone entry drops nothing; a blank line in a
    user's seed (a NULL value) blocks nothing, and does not make every phone or email unknown."""
    import shutil

    path = tmp_path / "warehouse.duckdb"
    shutil.copy(built_warehouse, path)
    views = ("stg_crm__contacts", "stg_shop__customers", "stg_pos__transactions")

    def staged(con, column: str) -> dict[str, list]:
        return {
            view: sorted(value for (value,) in con.execute(f"select {column} from staging.{view}").fetchall() if value)
            for view in views
            if column == "phone" or view != "stg_pos__transactions"
        }

    with connect(path) as con:
        phones, emails = staged(con, "phone"), staged(con, "email")
        assert all(phones.values()) and all(emails.values())
        placeholders = [
            value
            for (value,) in con.execute(
                "select identifier_value from identifier_blocklist where identifier_type = 'phone'"
            ).fetchall()
        ]
        blocked = phones["stg_shop__customers"][0]

        con.execute("insert into identifier_blocklist values ('phone', ?, 'test: added by the user')", [blocked])
        after_adding = staged(con, "phone")
        assert after_adding == {view: [p for p in values if p != blocked] for view, values in phones.items()}

        con.execute("delete from identifier_blocklist where identifier_type = 'phone'")
        without_phone_entries = staged(con, "phone")
        for view, values in phones.items():
            assert set(values) <= set(without_phone_entries[view]), view
        # the sample types a placeholder the seed holds back: with no entry it comes through
        assert set(placeholders) & {p for values in without_phone_entries.values() for p in values}

        con.execute("insert into identifier_blocklist select 'phone', unnest(?), 'restored'", [placeholders])
        con.execute("insert into identifier_blocklist values ('phone', null, 'blank'), ('email', null, 'blank')")
        assert staged(con, "phone") == phones
        assert staged(con, "email") == emails
