"""Rules that cross from the warehouse into Python are declared once, as dbt vars, and both
sides read them: what a valid email or phone looks like (staging and the sync plan), and
which consent purposes exist (the consent models and sync definitions)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from sync_world import Person, World, definition

from cdp.dbt import run_dbt
from cdp.dbt_vars import consent_column, consent_purposes, identifier_patterns, key_pattern
from cdp.settings import DBT_PROJECT_DIR
from cdp.warehouse import connect
from destinations.config import DestinationConfig
from destinations.definitions import SyncDefinitionError, parse_sync_definition
from destinations.sandbox.webhook import WebhookSandbox

#: keys as a user's own table might hold them, in the form staging normalises to
EMAILS = [
    "ada@example.com",
    "Grace.Hopper@Example.COM",  # staging lower-cases first; the plan matches case-blind
    "o'neil+news@mail.example.co.uk",
    "a@b.c",  # one-letter top-level domain: the old, looser plan check let this through
    "a@b",
    "no-at-sign.example.com",
    "two@@example.com",
    "sp ace@example.com",
    "dots@example..com",
]
PHONES = [
    "+4915123456789",
    "+12025550123",
    "+1234567",  # 7 digits: too short for staging, and now for the plan too
    "+1234567890123456",  # 16 digits
    "4915123456789",  # no +
]


def _staging_keeps(values: list[str], kind: str, warehouse: Path) -> dict[str, bool]:
    """Whether staging's own macro keeps each value (dbt show, on a built warehouse)."""
    rows = ", ".join("('" + value.replace("'", "''") + "')" for value in values)
    if kind == "email":
        expression = "{{ cdp.normalise_email('value') }}"
    else:  # a value already in international form: the record's country does not matter
        expression = "{{ cdp.normalise_phone('value', 'null', 'null') }}"
    output = run_dbt(
        [
            "show",
            "--inline",
            f"select value, {expression} is not null as kept from (values {rows}) as candidates(value)",
            "--output",
            "json",
            "--limit",
            "100",
            "--log-format",
            "json",
        ],
        warehouse=warehouse,
        echo=False,
    )
    for line in output.splitlines():
        data = json.loads(line).get("data", {}) if line.startswith("{") else {}
        if "preview" in data:
            return {row["value"]: row["kept"] for row in json.loads(data["preview"])}
    raise AssertionError(f"no preview in dbt show output:\n{output[-2000:]}")


def _plan_accepts(values: list[str], kind: str, tmp_path: Path) -> dict[str, bool]:
    """Whether a sync keyed on ``kind`` sends each value, or reports it as a malformed key."""
    with WebhookSandbox() as sandbox:
        world = World(tmp_path / f"{kind}.duckdb", sandbox)
        world.set_people({f"p{i:02d}": Person(email=value) for i, value in enumerate(values)})
        sync = definition(key=kind, identifiers={kind: "email"}) if kind == "phone" else definition()
        world.run(sync, dry_run=True)
        malformed = {
            row[0]
            for row in world.query(
                f"select record_key from cdp_sync.\"plan__{sync.name}\" where invalid_reason = 'malformed key'"
            )
        }
    return {value: value not in malformed for value in values}


@pytest.fixture(scope="module")
def warehouse(built_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "warehouse.duckdb"
    shutil.copy(built_warehouse, path)
    return path


@pytest.mark.parametrize(("kind", "values"), [("email", EMAILS), ("phone", PHONES)])
def test_a_sync_key_is_valid_exactly_when_staging_keeps_the_identifier(kind, values, warehouse, tmp_path):
    staging = _staging_keeps(values, kind, warehouse)
    plan = _plan_accepts(values, kind, tmp_path)
    assert plan == staging
    assert any(staging.values()) and not all(staging.values())  # both kinds of case are exercised


def test_the_patterns_have_one_home_the_dbt_var():
    patterns = identifier_patterns()
    assert set(patterns) == {"email", "phone"}
    assert key_pattern("email") == patterns["email"] and key_pattern("profile_id") is None
    macros = (DBT_PROJECT_DIR / "macros" / "normalise_identifiers.sql").read_text()
    assert "identifier_pattern('email')" in macros and "identifier_pattern('phone')" in macros
    assert patterns["email"] not in macros  # read from the var, not copied


def test_sync_definitions_accept_exactly_the_declared_consent_purposes():
    purposes = consent_purposes()
    assert purposes == ("email_marketing", "ads_personalization")
    for purpose in purposes:
        assert definition(consent_purpose=purpose).consent_column == consent_column(purpose)
    expected = r"'sms_marketing' is not one of email_marketing, ads_personalization"
    with pytest.raises(SyncDefinitionError, match=expected):
        definition(consent_purpose="sms_marketing")


@pytest.mark.slow
def test_a_new_consent_purpose_is_one_line_in_the_var(built_warehouse: Path, tmp_path: Path):
    """Add a purpose to a copy of the project: the consent models compute its column and
    a sync may name it. (profile_attributes' contract lists the new column as well: a
    public model's columns are a promise.)"""
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    settings_path = project / "dbt_project.yml"
    settings = yaml.safe_load(settings_path.read_text())
    settings["vars"]["consent_purposes"].append("sms_marketing")
    settings_path.write_text(yaml.safe_dump(settings, sort_keys=False))
    attributes_yaml = project / "models" / "attributes" / "_attributes__models.yml"
    text = attributes_yaml.read_text()
    anchor = "      - name: is_deletion_requested\n"
    column = "      - name: has_sms_marketing_consent\n        data_type: boolean\n        description: SMS.\n"
    attributes_yaml.write_text(text.replace(anchor, column + anchor, 1))
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(built_warehouse, warehouse)

    with connect(warehouse) as con:
        con.execute(
            "insert into raw.consent_events (identifier_type, identifier_value, purpose, granted, recorded_at, source) "
            "select 'email', email, 'sms_marketing', true, timestamp '2026-01-01', 'test' "
            "from main.profiles where email is not null order by profile_id limit 3"
        )
    run_dbt(
        ["run", "--select", "stg_privacy__consent_events", "int_attributes__consent", "profile_attributes"]
        + ["sync_profile_fields"],
        warehouse=warehouse,
        echo=False,
        project_dir=project,
    )
    with connect(warehouse, read_only=True) as con:
        (granted,) = con.execute("select count(*) from sync_profile_fields where has_sms_marketing_consent").fetchall()[
            0
        ]
    assert granted == 3

    purposes = consent_purposes(project)
    sync = parse_sync_definition(
        {"name": "sms_sync", "depends_on": {"nodes": []}},
        {
            "segment": "s",
            "destination": "hook",
            "mode": "mirror",
            "key": "email",
            "identifiers": {"email": "email"},
            "consent_purpose": "sms_marketing",
        },
        {"hook": DestinationConfig("hook", "webhook", {})},
        consent_purposes=purposes,
    )
    assert sync.consent_column == "has_sms_marketing_consent"
