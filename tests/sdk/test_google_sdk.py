"""Google's official clients against the Google emulators, pointed at them by URL only.

- Data Manager (google-ads-datamanager 0.9.4): ``IngestionServiceClient`` over REST, as
  SDK_REQUESTS.md shows, ingests hashed members, reads the request status (PROCESSING at
  the first poll, then SUCCESS with counts), removes members, and sees a request with one
  invalid member refused whole (``BadRequest`` carrying the ``google.rpc.BadRequest``
  detail that names the member). The client parses every answer into its own types, so a
  field of the wrong type or shape in the emulator's answers fails here.
- Google Ads legacy (google-ads 34.0.0): the library speaks gRPC only, so the job flow's
  messages are built with ``GoogleAdsClient.get_type``, serialised with protobuf
  ``json_format``, POSTed to the emulator's REST bindings, and every answer parsed strictly
  (unknown fields refused) back into the library's response types.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
import requests

from destinations.sandbox.datamanager import DEFAULT_ACCOUNT_ID, DEFAULT_AUDIENCE_ID, DEFAULT_TOKEN, DataManagerEmulator
from destinations.sandbox.server import SandboxServer

dm = pytest.importorskip("google.ads.datamanager_v1")
api_exceptions = pytest.importorskip("google.api_core.exceptions")
credentials_module = pytest.importorskip("google.oauth2.credentials")
auth_exceptions = pytest.importorskip("google.auth.exceptions")


def h(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.fixture
def datamanager() -> Iterator[tuple[SandboxServer, DataManagerEmulator]]:
    emulator = DataManagerEmulator()
    with SandboxServer([emulator]) as server:
        yield server, emulator


def client_for(server: SandboxServer, token: str = DEFAULT_TOKEN):
    return dm.IngestionServiceClient(
        transport="rest",
        credentials=credentials_module.Credentials(token=token),
        client_options={"api_endpoint": server.base_url("datamanager")},
    )


def destination():
    return dm.Destination(
        operating_account=dm.ProductAccount(
            account_type=dm.ProductAccount.AccountType.GOOGLE_ADS, account_id=DEFAULT_ACCOUNT_ID
        ),
        product_destination_id=DEFAULT_AUDIENCE_ID,
    )


def ann_lee(email: str = "ann@example.com"):
    return dm.AudienceMember(
        user_data=dm.UserData(
            user_identifiers=[
                dm.UserIdentifier(email_address=h(email)),
                dm.UserIdentifier(phone_number=h("+16505550100")),
                dm.UserIdentifier(
                    address=dm.AddressInfo(
                        given_name=h("ann"), family_name=h("lee"), region_code="US", postal_code="94025"
                    )
                ),
            ]
        )
    )


def ingest_request(members):
    return dm.IngestAudienceMembersRequest(
        destinations=[destination()],
        audience_members=members,
        consent=dm.Consent(
            ad_user_data=dm.ConsentStatus.CONSENT_GRANTED, ad_personalization=dm.ConsentStatus.CONSENT_GRANTED
        ),
        encoding=dm.Encoding.HEX,
        terms_of_service=dm.TermsOfService(customer_match_terms_of_service_status=dm.TermsOfServiceStatus.ACCEPTED),
    )


def test_the_official_client_ingests_polls_and_removes(datamanager):
    server, emulator = datamanager
    client = client_for(server)
    response = client.ingest_audience_members(
        request=ingest_request(
            [
                ann_lee(),
                dm.AudienceMember(
                    user_data=dm.UserData(user_identifiers=[dm.UserIdentifier(email_address=h("bob@example.com"))])
                ),
            ]
        )
    )
    assert response.request_id

    status_request = dm.RetrieveRequestStatusRequest(request_id=response.request_id)
    first = client.retrieve_request_status(request=status_request).request_status_per_destination[0]
    assert first.request_status == dm.RequestStatusPerDestination.RequestStatus.PROCESSING
    second = client.retrieve_request_status(request=status_request).request_status_per_destination[0]
    assert second.request_status == dm.RequestStatusPerDestination.RequestStatus.SUCCESS
    assert second.destination.product_destination_id == DEFAULT_AUDIENCE_ID
    assert second.destination.operating_account.account_type == dm.ProductAccount.AccountType.GOOGLE_ADS
    ingested = second.audience_members_ingestion_status.user_data_ingestion_status
    assert (ingested.record_count, ingested.user_identifier_count) == (2, 4)
    assert ingested.upload_match_rate_range == dm.MatchRateRange.MATCH_RATE_RANGE_91_TO_100

    held = emulator.snapshot()["audiences"][DEFAULT_AUDIENCE_ID]
    assert held["emails"] == sorted([h("ann@example.com"), h("bob@example.com")])
    assert held["phones"] == [h("+16505550100")]
    assert held["addresses"] == [[h("ann"), h("lee"), "US", "94025"]]

    removed = client.remove_audience_members(
        request=dm.RemoveAudienceMembersRequest(
            destinations=[destination()], audience_members=[ann_lee()], encoding=dm.Encoding.HEX
        )
    )
    assert removed.request_id
    for _ in range(2):
        status = client.retrieve_request_status(
            request=dm.RetrieveRequestStatusRequest(request_id=removed.request_id)
        ).request_status_per_destination[0]
    assert status.audience_members_removal_status.user_data_removal_status.record_count == 1
    held = emulator.snapshot()["audiences"][DEFAULT_AUDIENCE_ID]
    assert held == {
        "operating_account_id": DEFAULT_ACCOUNT_ID,
        "emails": [h("bob@example.com")],
        "phones": [],
        "addresses": [],
    }
    # the client sent enums as numbers and asked for numbers back
    assert all(r.status == 200 for r in emulator.requests)


def test_one_invalid_member_fails_the_whole_request_for_the_official_client(datamanager):
    server, emulator = datamanager
    raw = dm.AudienceMember(
        user_data=dm.UserData(user_identifiers=[dm.UserIdentifier(email_address="ann@example.com")])
    )
    with pytest.raises(api_exceptions.BadRequest) as raised:
        client_for(server).ingest_audience_members(request=ingest_request([ann_lee("bob@example.com"), raw]))
    error = raised.value
    assert error.code == 400 and "There was a problem with the request." in error.message
    # over REST the client keeps the details as the JSON objects Google sends
    (bad_request,) = [d for d in error.details if d["@type"] == "type.googleapis.com/google.rpc.BadRequest"]
    (violation,) = bad_request["fieldViolations"]
    assert violation["field"] == "audience_members.audience_members[1].user_data.user_identifiers"
    assert violation["reason"] == "INVALID_HEX_ENCODING"
    assert error.reason == "INVALID_ARGUMENT" and error.domain == "datamanager.googleapis.com"
    assert emulator.snapshot()["audiences"][DEFAULT_AUDIENCE_ID]["emails"] == []  # nothing applied


def test_a_wrong_token_makes_the_official_client_try_to_refresh_it(datamanager):
    """google-auth answers Google's 401 by refreshing the token; a bare access token cannot be
    refreshed, so the client raises RefreshError — what a user with an expired token sees."""
    server, emulator = datamanager
    with pytest.raises(auth_exceptions.RefreshError):
        client_for(server, token="ya29.wrong").ingest_audience_members(request=ingest_request([ann_lee()]))
    assert [r.status for r in emulator.requests] == [401]


def test_the_official_client_reads_throttling_as_resource_exhausted(datamanager):
    from destinations.sandbox.faults import Fault

    server, emulator = datamanager
    emulator.faults.inject(Fault.throttle(retry_after=1))
    with pytest.raises(api_exceptions.TooManyRequests) as raised:
        client_for(server).ingest_audience_members(request=ingest_request([ann_lee()]), retry=None)
    assert raised.value.reason == "RATE_LIMIT_EXCEEDED"
    assert requests.get(server.origin, timeout=2).status_code == 404  # still serving
