"""The official Klaviyo SDK (klaviyo-api 25.0.0), pointed at the emulator by its test host
only, runs Klaviyo's core flow. The SDK parses every answer into strict pydantic models
(a job without ``links.self``, a list member without ``joined_group_at``, an error whose
``id`` is not a string … makes it raise), so each call passing is a conformance check of
the emulator's shapes: what a connector tested against the emulator meets at Klaviyo."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from contract.klaviyo import fast_emulator
from klaviyo_api import KlaviyoAPI
from openapi_client.exceptions import ApiException

from destinations.sandbox.klaviyo import DEFAULT_LIST_ID, KlaviyoEmulator
from destinations.sandbox.server import SandboxServer


@pytest.fixture
def running() -> Iterator[tuple[KlaviyoAPI, KlaviyoEmulator]]:
    emulator = fast_emulator(polls_to_complete=3)
    with SandboxServer([emulator]) as server:
        yield KlaviyoAPI(emulator.api_key, max_delay=1, max_retries=1, test_host=server.base_url(emulator)), emulator


def import_job(*profiles: dict, list_id: str | None = DEFAULT_LIST_ID) -> dict:
    body: dict = {
        "data": {
            "type": "profile-bulk-import-job",
            "attributes": {"profiles": {"data": [{"type": "profile", "attributes": p} for p in profiles]}},
        }
    }
    if list_id:
        body["data"]["relationships"] = {"lists": {"data": [{"type": "list", "id": list_id}]}}
    return body


def members(body: dict, *ids: str) -> dict:
    return {"data": [{"type": "profile", "id": profile_id} for profile_id in ids]}


def test_the_sdk_runs_the_import_list_and_duplicate_flow_and_reads_the_state_back(running):
    client, emulator = running

    # spawn an import job with the list relationship; one profile has an invalid email
    job = client.Profiles.bulk_import_profiles(
        import_job(
            {"email": "ann@example.com", "first_name": "Ann", "properties": {"cdp_segment": "vip"}},
            {"email": "bob@example.com", "phone_number": "+15005550006", "external_id": "cust-2"},
            {"email": "not-an-email"},
        )
    )
    assert job.data.type == "profile-bulk-import-job" and job.data.attributes.status == "queued"
    assert job.data.attributes.total_count == 3 and job.data.links.var_self.endswith(job.data.id)

    # poll it: not complete at the first poll, complete at the third (this emulator's setting)
    statuses = [client.Profiles.get_bulk_import_profiles_job(job.data.id).data.attributes.status for _ in range(3)]
    assert statuses == ["processing", "processing", "complete"]
    done = client.Profiles.get_bulk_import_profiles_job(job.data.id).data.attributes
    assert (done.total_count, done.completed_count, done.failed_count) == (3, 2, 1)
    assert done.completed_at is not None

    # its import errors, in JSON:API shape, pointing at the third profile
    errors = client.Profiles.get_errors_for_bulk_import_profiles_job(job.data.id)
    [error] = errors.data
    assert error.type == "import-error" and error.attributes.code == "invalid"
    assert error.attributes.source.pointer == "/data/attributes/profiles/data/2/attributes/email"

    # the profiles it touched, and the same profiles found by email
    touched = client.Profiles.get_profile_ids_for_bulk_import_profiles_job(job.data.id)
    ids = [item.id for item in touched.data]
    assert len(ids) == 2
    found = client.Profiles.get_profiles(filter='any(email,["ann@example.com","bob@example.com"])')
    by_email = {profile.attributes.email: profile for profile in found.data}
    assert {by_email["ann@example.com"].id, by_email["bob@example.com"].id} == set(ids)
    assert by_email["ann@example.com"].attributes.properties == {"cdp_segment": "vip"}
    ann, bob = by_email["ann@example.com"].id, by_email["bob@example.com"].id

    # the job put both in the list; take Bob out and in again (a set: adding twice is harmless)
    client.Lists.remove_profiles_from_list(DEFAULT_LIST_ID, members({}, bob))
    assert {item.id for item in client.Lists.get_profile_ids_for_list(DEFAULT_LIST_ID).data} == {ann}
    client.Lists.add_profiles_to_list(DEFAULT_LIST_ID, members({}, bob, ann))
    client.Lists.add_profiles_to_list(DEFAULT_LIST_ID, members({}, bob))

    # list members read back, with joined_group_at (the strict model requires it)
    listed = client.Lists.get_profiles_for_list(DEFAULT_LIST_ID)
    assert sorted(member.attributes.email for member in listed.data) == ["ann@example.com", "bob@example.com"]
    assert all(member.attributes.joined_group_at is not None for member in listed.data)
    sparse = client.Lists.get_profiles_for_list(DEFAULT_LIST_ID, fields_profile=["email"])
    assert sorted(member["attributes"]["email"] for member in sparse["data"]) == ["ann@example.com", "bob@example.com"]

    # creating Ann again: 409 duplicate_profile naming her id
    with pytest.raises(ApiException) as raised:
        client.Profiles.create_profile({"data": {"type": "profile", "attributes": {"email": "ann@example.com"}}})
    assert raised.value.status == 409
    assert _code(_first_error(raised.value)) == "duplicate_profile"  # the SDK's error model parses it
    [duplicate] = _errors(raised.value.body)  # its model keeps no meta: read it from the body, as a connector does
    assert duplicate["meta"]["duplicate_profile_id"] == ann

    # a new profile is created: 201 with its id
    created = client.Profiles.create_profile({"data": {"type": "profile", "attributes": {"email": "cy@example.com"}}})
    assert created.data.id and created.data.attributes.email == "cy@example.com"

    # the emulator's own state agrees with what the SDK read
    assert set(emulator.members(DEFAULT_LIST_ID)) == {ann, bob}


def test_the_sdk_reads_klaviyos_errors_for_an_unknown_list_and_a_wrong_key(running):
    client, emulator = running
    with pytest.raises(ApiException) as unknown:
        client.Lists.add_profiles_to_list("NoSuch", members({}, "01ABC"))
    assert unknown.value.status == 404
    assert _code(_first_error(unknown.value)) == "not_found"

    wrong = KlaviyoAPI("pk_wrong", max_delay=1, max_retries=1, test_host=client.configuration.host)
    with pytest.raises(ApiException) as refused:
        wrong.Lists.get_list(DEFAULT_LIST_ID)
    assert refused.value.status == 401
    assert _code(_first_error(refused.value)) == "authentication_failed"

    listed = client.Lists.get_list(DEFAULT_LIST_ID)
    assert listed.data.id == DEFAULT_LIST_ID and listed.data.attributes.name


# -- reading an ApiException ---------------------------


def _errors(body: str | bytes | None) -> list[dict]:
    import json

    return json.loads(body or "{}").get("errors", [])


def _first_error(exception: ApiException):
    """The first error as the SDK's strict error model parsed it (None would mean it could not)."""
    assert exception.data is not None, "the SDK could not parse Klaviyo's error body"
    return exception.data.errors[0]


def _code(error) -> str:
    return error.code
