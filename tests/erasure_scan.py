"""The erasure tests' scan: which tables the project writes still hold a person's data.

Shared by tests/test_erasure.py (the dbt side) and tests/test_privacy_end_to_end.py (build + every
sync + every sandbox destination).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from destinations.warehouse import as_warehouse

#: schemas dbt does not write: the user's raw data, the generator's answer key, and the catalogs
NOT_WRITTEN_BY_THE_PROJECT = ("raw", "ground_truth", "information_schema", "pg_catalog", "pg_toast")


@dataclass(frozen=True)
class Person:
    profile_id: str
    email: str
    phone: str
    first_name: str
    last_name: str
    customer_ids: tuple[str, ...]


def scan(con: Any, person: Person) -> dict[str, set[str]]:
    """Which tables (and views) of the schemas the project writes hold any of the person's data:
    needle -> {schema.table}. Every column of every relation, cast to text; email and phone are
    searched inside values (JSON properties too), names and the profile id as whole values.
    ``con``: a DuckDB connection or any destinations.warehouse Warehouse (the Postgres tests')."""
    warehouse = as_warehouse(con)
    needles = {
        "email": ("contains", person.email.lower()),
        "phone": ("contains", person.phone),
        "last_name": ("equals", person.last_name.lower()),
        "profile_id": ("equals", person.profile_id),
    }
    relations = warehouse.fetch(
        "select table_schema, table_name from information_schema.tables "
        f"where table_schema not in {NOT_WRITTEN_BY_THE_PROJECT} and table_catalog = current_database()"
    )
    found: dict[str, set[str]] = {name: set() for name in needles}
    for schema, table in relations:
        columns = [
            row[0]
            for row in warehouse.fetch(
                "select column_name from information_schema.columns where table_schema = :schema "
                "and table_name = :table and table_catalog = current_database()",
                {"schema": schema, "table": table},
            )
        ]
        for name, (how, needle) in needles.items():
            if name == "profile_id" and table == "privacy_erasures":
                continue  # the audit trail: the only place an erased profile's id remains, by contract
            text = [f'lower(cast("{column}" as varchar))' for column in columns]
            condition = " or ".join(
                f"strpos({expression}, :needle) > 0" if how == "contains" else f"{expression} = :needle"
                for expression in text
            )
            (hits,) = warehouse.fetch(
                f'select count(*) from "{schema}"."{table}" where {condition}', {"needle": needle}
            )
            if hits[0]:
                found[name].add(f"{schema}.{table}")
    return found


def pick_person(con: Any, extra_condition: str = "true", schema: str = "main") -> Person:
    """A profile with email, phone and a last name nobody else has (so a name hit is theirs), whose
    phone the guard did not hold back as shared, and who is in at least one segment. ``schema``: where
    dbt built the project (main on DuckDB; the target's schema elsewhere)."""
    warehouse = as_warehouse(con)
    rows = warehouse.fetch(
        f"""
        select p.profile_id, p.email, p.phone, p.first_name, p.last_name
        from {schema}.profiles as p
        where p.email is not null and p.phone is not null and p.first_name is not null and p.last_name is not null
            and (select count(*) from {schema}.profiles as o where lower(o.last_name) = lower(p.last_name)) = 1
            and (select count(*) from raw.crm_contacts as c where lower(trim(c.last_name)) = lower(p.last_name))
              + (select count(*) from raw.shop_customers as s where lower(trim(s.last_name)) = lower(p.last_name))
              = (select count(*) from {schema}.profile_source_records as r
                 where r.profile_id = p.profile_id and r.source in ('crm', 'shop'))
            and p.phone not in (select identifier_value from {schema}.identity_guard_decisions where is_shared)
            and p.profile_id in (select profile_id from {schema}.segment_membership)
            and (select count(*) from {schema}.profile_identifiers as i
                 where i.profile_id = p.profile_id and i.identifier_type = 'customer_id') >= 1
            and {extra_condition}
        order by p.profile_id
        limit 1
        """
    )
    assert rows, "the sample has no person fit for the erasure test"
    profile_id, email, phone, first_name, last_name = rows[0]
    customer_ids = warehouse.fetch(
        f"select identifier_value from {schema}.profile_identifiers "
        "where profile_id = :profile_id and identifier_type = 'customer_id'",
        {"profile_id": profile_id},
    )
    return Person(profile_id, email, phone, first_name, last_name, tuple(row[0] for row in customer_ids))
