"""Every bad sync definition is rejected with a message naming the sync and the field.

Definitions are dbt exposures with meta.sync (read from the manifest), checked against
destinations.yml; what only the warehouse knows (segment, columns) is checked at run time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sync_world import World, definition, people

from destinations.base import DestinationConfigError
from destinations.config import CONNECTORS, DestinationConfig, connect, load_destinations
from destinations.definitions import SyncDefinitionError, load_sync_definitions
from destinations.sandbox.webhook import WebhookSandbox

GOOD = {
    "segment": "test_audience",
    "destination": "hook",
    "mode": "mirror",
    "key": "email",
    "identifiers": {"email": "email"},
    "fields": {"first_name": "first_name"},
}


class AudienceOnlyConnector:
    """A destination type that cannot mirror (like an ad platform that only appends)."""

    supported_modes = frozenset({"add_only"})
    identifier_names = frozenset({"email"})


def _manifest(tmp_path: Path, **syncs: dict) -> Path:
    exposures = {
        f"exposure.cdp.{name}": {"name": name, "config": {"meta": {"sync": spec}}, "depends_on": {"nodes": []}}
        for name, spec in syncs.items()
    }
    exposures["exposure.cdp.a_dashboard"] = {"name": "a_dashboard", "config": {"meta": {}}, "depends_on": {"nodes": []}}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"exposures": exposures}))
    return path


@pytest.fixture
def destinations(monkeypatch: pytest.MonkeyPatch) -> dict[str, DestinationConfig]:
    monkeypatch.setitem(CONNECTORS, "append_only", f"{__name__}:AudienceOnlyConnector")
    return {
        "hook": DestinationConfig("hook", "webhook", {}),
        "ads": DestinationConfig("ads", "append_only", {}),
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mode": "mirrorr"}, "sync 'bad': field 'mode': 'mirrorr' is not one of mirror, upsert, add_only"),
        (
            {"destination": "nowhere"},
            "sync 'bad': field 'destination': unknown destination 'nowhere' (known: ads, hook)",
        ),
        (
            {"destination": "ads", "mode": "mirror"},
            "sync 'bad': field 'mode': destination 'ads' (append_only) cannot do 'mirror' (it supports add_only)",
        ),
        ({"segment": None}, "sync 'bad': field 'segment': is required"),
        ({"identifiers": {}}, "sync 'bad': field 'identifiers': is required"),
        ({"key": "phone"}, "sync 'bad': field 'key': 'phone' must be one of the mapped identifiers (email)"),
        (
            {"identifiers": {"email": "email", "mobile_ad_id": "madid"}},
            "sync 'bad': field 'identifiers.mobile_ad_id': destination 'hook' (webhook) takes identifiers",
        ),
        ({"fields": {"ltv": "lifetime value"}}, "sync 'bad': field 'fields.ltv': column must be a plain column name"),
        ({"fileds": {}}, "sync 'bad': field 'fileds': is not a sync setting"),
        ({"consent_purpose": "marketing"}, "sync 'bad': field 'consent_purpose': 'marketing' is not one of"),
        ({"holdout_percent": 100}, "sync 'bad': field 'holdout_percent': must be a whole number from 0 to 99"),
        ({"max_removal_share": 0}, "sync 'bad': field 'max_removal_share': must be a number above 0 and at most 1"),
        ({"schedule": "hourly"}, "sync 'bad': field 'schedule': 'hourly' is not a 5-field cron expression"),
        ({"paused": "yes"}, "sync 'bad': field 'paused': must be true or false, got 'yes'"),
        (
            {"max_missing_key_share": 1.5},
            "sync 'bad': field 'max_missing_key_share': must be a number above 0 and at most 1, got 1.5",
        ),
        ({"max_shrink_share": True}, "sync 'bad': field 'max_shrink_share': must be a number above 0 and at most 1"),
        ({"max_growth_share": 0}, "sync 'bad': field 'max_growth_share': must be a number above 0 (1 = the audience"),
    ],
)
def test_a_bad_definition_names_the_sync_and_the_field(tmp_path, destinations, change, message):
    spec = {**GOOD, **change}
    spec = {key: value for key, value in spec.items() if value is not None}
    with pytest.raises(SyncDefinitionError) as error:
        load_sync_definitions(_manifest(tmp_path, good=GOOD, bad=spec), destinations)
    assert message in str(error.value)
    assert "sync 'good'" not in str(error.value)


def test_every_bad_sync_is_reported_at_once_and_good_ones_load(tmp_path, destinations):
    manifest = _manifest(tmp_path, one={**GOOD, "mode": "x"}, two={**GOOD, "destination": "y"})
    with pytest.raises(SyncDefinitionError) as error:
        load_sync_definitions(manifest, destinations)
    assert "sync 'one': field 'mode'" in str(error.value) and "sync 'two': field 'destination'" in str(error.value)
    loaded = load_sync_definitions(_manifest(tmp_path, good=GOOD), destinations)
    assert list(loaded) == ["good"] and loaded["good"].key_column == "email"


def test_an_unknown_segment_or_missing_column_is_rejected_before_anything_is_sent(tmp_path):
    with WebhookSandbox() as sandbox:
        world = World(tmp_path / "w.duckdb", sandbox)
        world.set_people(people(2))
        with pytest.raises(SyncDefinitionError, match=r"sync 'test_sync': field 'segment': unknown segment 'vipz'"):
            world.run(definition(segment="vipz"))
        with pytest.raises(
            SyncDefinitionError,
            match=r"sync 'test_sync': field 'fields.score': column 'churn_score' is not in main.sync_profile_fields",
        ):
            world.run(definition(fields={"score": "churn_score"}))
        assert sandbox.requests == []


def test_the_shipped_syncs_load_from_the_real_manifest(dbt_manifest: Path):
    syncs = load_sync_definitions(dbt_manifest, load_destinations())
    assert {"champions_to_webhook", "churn_risk_to_webhook"} <= set(syncs)
    churn = syncs["churn_risk_to_webhook"]
    assert (churn.segment, churn.mode, churn.holdout_percent, churn.models) == (
        "high_churn_risk",
        "upsert",
        10,
        ("high_churn_risk",),
    )


def test_the_owner_email_of_the_exposure_is_the_owner_shown_in_dagster(tmp_path, destinations):
    """owner.email becomes SyncDefinition.owner_email (the sync assets' Dagster owner); a value that
    is no email address is rejected naming the sync and the field; no email, no owner."""

    def load(owner: dict) -> dict:
        manifest = tmp_path / "manifest.json"
        exposure = {"name": "s", "owner": owner, "config": {"meta": {"sync": GOOD}}, "depends_on": {"nodes": []}}
        manifest.write_text(json.dumps({"exposures": {"exposure.cdp.s": exposure}}))
        return load_sync_definitions(manifest, destinations)

    owned = load({"name": "CRM team", "email": "crm@example.com"})["s"]
    assert (owned.owner, owned.owner_email) == ("CRM team", "crm@example.com")
    assert load({"name": "CRM team"})["s"].owner_email is None
    with pytest.raises(SyncDefinitionError, match=r"sync 's': field 'owner.email': must be an email address"):
        load({"name": "CRM team", "email": "the CRM team"})


def test_every_shipped_sync_names_an_owner_email(dbt_manifest: Path):
    syncs = load_sync_definitions(dbt_manifest, load_destinations())
    assert syncs and all(sync.owner_email for sync in syncs.values()), {n: s.owner_email for n, s in syncs.items()}
    assert syncs["lapsed_to_meta"].owner_email == "retention@example.com"


def test_destination_file_errors_name_the_destination_and_field(tmp_path, monkeypatch):
    bad_type = tmp_path / "bad_type.yml"
    bad_type.write_text("destinations:\n  crm:\n    type: carrier_pigeon\n")
    with pytest.raises(
        DestinationConfigError, match="destination 'crm': field 'type': unknown connector 'carrier_pigeon'"
    ):
        load_destinations(bad_type)
    no_type = tmp_path / "no_type.yml"
    no_type.write_text("destinations:\n  crm:\n    url: http://x\n")
    with pytest.raises(DestinationConfigError, match="destination 'crm': field 'type' is required"):
        load_destinations(no_type)
    missing_env = tmp_path / "env.yml"
    missing_env.write_text(
        "destinations:\n  hook:\n    type: webhook\n    url: ${HOOK_URL}\n    secret_env: HOOK_SECRET\n"
    )
    config = load_destinations(missing_env)["hook"]
    with pytest.raises(DestinationConfigError, match=r"environment variable \$HOOK_URL is not set"):
        connect(config, env={})
    with pytest.raises(DestinationConfigError, match=r"\$HOOK_SECRET"):
        connect(config, env={"HOOK_URL": "http://127.0.0.1:1/hooks"})


def test_identifiers_the_destination_keeps_unique_are_named_on_the_sync_but_never_its_key(tmp_path):
    """Klaviyo keeps email, phone and external id unique per account: the plan withholds a shared
    value of each mapped identifier but the key (duplicate keys are the plan's own rule)."""
    both = {**GOOD, "identifiers": {"email": "email", "phone": "phone"}}
    destinations = {
        "klaviyo": DestinationConfig("klaviyo", "klaviyo", {}),
        "hook": DestinationConfig("hook", "webhook"),
    }
    syncs = load_sync_definitions(
        _manifest(tmp_path, to_klaviyo={**both, "destination": "klaviyo"}, to_hook=both), destinations
    )
    assert syncs["to_klaviyo"].unique_identifiers == ("phone",)
    assert syncs["to_hook"].unique_identifiers == ()
