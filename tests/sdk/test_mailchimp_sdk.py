"""The official Mailchimp SDK (mailchimp-marketing 3.0.80) against the emulator, changed in
nothing but its base URL: the core flow (batch subscribe with a bad address, read a member
by hash, page the members, tag, archive, forget) and the errors it must recognise.

The SDK decodes a body only when its Content-Type contains ``application/json`` and hands
everything else back as text, so these tests also hold the emulator to Mailchimp's
content types: JSON answers decode to dicts, problem JSON errors arrive as the
``ApiClientError`` text with the HTTP status, and a 204 comes back as the bare response.
"""

from __future__ import annotations

import hashlib
import json

import mailchimp_marketing
import pytest
from mailchimp_marketing.api_client import ApiClientError

from destinations.sandbox.mailchimp import MailchimpSandbox

ANN_HASH = hashlib.md5(b"ann@example.com").hexdigest()


@pytest.fixture
def sandbox():
    with MailchimpSandbox() as running:
        yield running


def sdk_client(sandbox: MailchimpSandbox, api_key: str | None = None) -> mailchimp_marketing.Client:
    client = mailchimp_marketing.Client()
    client.set_config({"api_key": api_key or sandbox.api_key})
    client.api_client.host = sandbox.base_url  # the only change: where the API is
    return client


def test_the_sdks_core_flow_runs_and_reads_the_state_back(sandbox: MailchimpSandbox):
    client = sdk_client(sandbox)
    list_id = sandbox.list_id
    assert client.ping.get() == {"health_status": "Everything's Chimpy!"}
    assert client.lists.get_list(list_id)["id"] == list_id

    result = client.lists.batch_list_members(
        list_id,
        {
            "members": [
                {
                    "email_address": "Ann@Example.com",
                    "status": "subscribed",
                    "merge_fields": {"FNAME": "Ann"},
                    "tags": ["vip"],
                },
                {"email_address": "not-an-email", "status": "subscribed"},
            ],
            "update_existing": True,
        },
    )
    assert {"new_members", "updated_members", "errors", "total_created", "total_updated", "error_count"} <= set(result)
    assert (result["total_created"], result["total_updated"], result["error_count"]) == (1, 0, 1)
    [error] = result["errors"]
    assert error["email_address"] == "not-an-email" and error["error_code"] == "ERROR_GENERIC"

    member = client.lists.get_list_member(list_id, ANN_HASH)
    assert member["id"] == ANN_HASH and member["email_address"] == "Ann@Example.com"
    assert member["status"] == "subscribed" and member["merge_fields"]["FNAME"] == "Ann"
    assert [tag["name"] for tag in member["tags"]] == ["vip"] and member["list_id"] == list_id

    page = client.lists.get_list_members_info(list_id, count=1000)
    assert page["total_items"] == 1 and [m["id"] for m in page["members"]] == [ANN_HASH]

    client.lists.update_list_member_tags(list_id, ANN_HASH, {"tags": [{"name": "champions", "status": "active"}]})
    updated = client.lists.set_list_member(
        list_id,
        ANN_HASH,
        {"email_address": "ann@example.com", "status_if_new": "subscribed", "merge_fields": {"LNAME": "Lee"}},
    )
    assert updated["full_name"] == "Ann Lee"

    archived = client.lists.delete_list_member(list_id, ANN_HASH)
    assert archived.status_code == 204
    assert client.lists.get_list_member(list_id, ANN_HASH)["status"] == "archived"

    state = sandbox.emulator.snapshot()["lists"][list_id]["members"]
    assert state == {
        ANN_HASH: {
            "email_address": "Ann@Example.com",
            "status": "archived",
            "merge_fields": {"FNAME": "Ann", "LNAME": "Lee"},
            "tags": ["vip", "champions"],
        }
    }


def test_the_sdk_recognises_mailchimps_errors(sandbox: MailchimpSandbox):
    client = sdk_client(sandbox)
    with pytest.raises(ApiClientError) as unknown:
        client.lists.get_list("nope")
    assert unknown.value.status_code == 404
    assert json.loads(unknown.value.text)["title"] == "Resource Not Found"

    sandbox.emulator.seed_member("gone@example.com", status="unsubscribed")
    gone = hashlib.md5(b"gone@example.com").hexdigest()
    with pytest.raises(ApiClientError) as compliance:
        client.lists.set_list_member(
            sandbox.list_id, gone, {"email_address": "gone@example.com", "status": "subscribed"}
        )
    assert compliance.value.status_code == 400
    assert json.loads(compliance.value.text)["title"] == "Member In Compliance State"

    client.lists.add_list_member(sandbox.list_id, {"email_address": "bye@example.com", "status": "subscribed"})
    bye = hashlib.md5(b"bye@example.com").hexdigest()
    assert client.lists.delete_list_member_permanent(sandbox.list_id, bye).status_code == 204
    with pytest.raises(ApiClientError) as forgotten:
        client.lists.add_list_member(sandbox.list_id, {"email_address": "bye@example.com", "status": "subscribed"})
    assert json.loads(forgotten.value.text)["title"] == "Forgotten Email Not Subscribed"

    with pytest.raises(ApiClientError) as refused:
        sdk_client(sandbox, api_key="ffffffffffffffffffffffffffffffff-us19").ping.get()
    assert refused.value.status_code == 401 and json.loads(refused.value.text)["title"] == "API Key Invalid"
    assert sandbox.emulator.members()[gone]["status"] == "unsubscribed"
