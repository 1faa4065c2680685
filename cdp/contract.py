"""The public raw-data contract (README, "The data contract") as code.

Users fill these tables in schema ``raw`` (or point dbt sources at theirs). The sample
generator, the dbt sources, the tests and the docs all follow this one definition:
tests/test_contract.py checks that the dbt sources
(``dbt_project/models/staging/*/_<source>__sources.yml``) declare exactly these tables,
columns and data types, and that README's table names the same columns.
Extra columns are allowed after these; missing optional columns are NULL.
"""

from __future__ import annotations

RAW_TABLES: dict[str, list[tuple[str, str]]] = {
    "crm_contacts": [
        ("contact_id", "varchar"),
        ("email", "varchar"),
        ("phone", "varchar"),
        ("first_name", "varchar"),
        ("last_name", "varchar"),
        ("city", "varchar"),
        ("country", "varchar"),
        ("postal_code", "varchar"),
        ("birth_date", "date"),
        ("loyalty_card_id", "varchar"),
        ("created_at", "timestamp"),
        ("updated_at", "timestamp"),
    ],
    "shop_customers": [
        ("customer_id", "varchar"),
        ("email", "varchar"),
        ("phone", "varchar"),
        ("first_name", "varchar"),
        ("last_name", "varchar"),
        ("city", "varchar"),
        ("country", "varchar"),
        ("postal_code", "varchar"),
        ("created_at", "timestamp"),
        ("updated_at", "timestamp"),
    ],
    "shop_orders": [
        ("order_id", "varchar"),
        ("customer_id", "varchar"),
        ("ordered_at", "timestamp"),
        ("status", "varchar"),
        ("total_amount", "decimal(12,2)"),
        ("currency", "varchar"),
    ],
    "shop_order_items": [
        ("order_id", "varchar"),
        ("line_number", "integer"),
        ("product_id", "varchar"),
        ("product_category", "varchar"),
        ("quantity", "integer"),
        ("unit_price", "decimal(12,2)"),
    ],
    "web_events": [
        ("event_id", "varchar"),
        ("anonymous_id", "varchar"),
        ("user_id", "varchar"),
        ("email", "varchar"),
        ("event_type", "varchar"),
        ("properties", "varchar"),
        ("occurred_at", "timestamp"),
    ],
    "email_events": [
        ("event_id", "varchar"),
        ("email", "varchar"),
        ("event_type", "varchar"),
        ("campaign_id", "varchar"),
        ("occurred_at", "timestamp"),
    ],
    "pos_transactions": [
        ("transaction_id", "varchar"),
        ("store_id", "varchar"),
        ("loyalty_card_id", "varchar"),
        ("phone", "varchar"),
        ("amount", "decimal(12,2)"),
        ("occurred_at", "timestamp"),
    ],
    "support_tickets": [
        ("ticket_id", "varchar"),
        ("email", "varchar"),
        ("category", "varchar"),
        ("status", "varchar"),
        ("opened_at", "timestamp"),
    ],
    "consent_events": [
        ("identifier_type", "varchar"),
        ("identifier_value", "varchar"),
        ("purpose", "varchar"),
        ("granted", "boolean"),
        ("recorded_at", "timestamp"),
        ("source", "varchar"),
    ],
    "deletion_requests": [
        ("request_id", "varchar"),
        ("identifier_type", "varchar"),
        ("identifier_value", "varchar"),
        ("requested_at", "timestamp"),
    ],
}


def create_raw_tables_sql(schema: str = "raw") -> list[str]:
    """DDL for every contract table, empty, in ``schema`` (drops existing ones)."""
    statements = [f"create schema if not exists {schema}"]
    for table, columns in RAW_TABLES.items():
        cols = ", ".join(f"{name} {type_}" for name, type_ in columns)
        statements.append(f"drop table if exists {schema}.{table}")
        statements.append(f"create table {schema}.{table} ({cols})")
    return statements
