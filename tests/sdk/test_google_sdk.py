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


# -- Google Ads (legacy OfflineUserDataJob flow): library messages over the REST bindings -----------


@pytest.fixture(scope="module")
def ads():
    """The google-ads library (its protobuf types; it speaks gRPC only, so no transport)."""
    pytest.importorskip("google.ads.googleads")
    from google.ads.googleads.client import GoogleAdsClient

    return GoogleAdsClient(
        credentials=credentials_module.Credentials(token="unused"), developer_token="", version="v26"
    )


@pytest.fixture
def googleads():
    from destinations.sandbox.googleads import GoogleAdsEmulator

    emulator = GoogleAdsEmulator()
    with SandboxServer([emulator]) as server:
        yield server, emulator


def rest(server: SandboxServer, path: str, message, *, drop: str = ""):
    """POST a library request message to its REST binding (the path parameter left out of the body)."""
    from google.protobuf import json_format

    from destinations.sandbox.googleads import DEFAULT_TOKEN

    body = json_format.MessageToDict(message)
    body.pop(drop, None)
    return requests.post(
        f"{server.base_url('googleads')}/v26/{path}",
        json=body,
        headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
        timeout=10,
    )


def parse(response, message):
    """The answer parsed strictly (an unknown field fails) into the library's response type."""
    from google.protobuf import json_format

    assert response.status_code == 200, response.text
    return json_format.Parse(response.text, message, ignore_unknown_fields=False)


def test_the_google_ads_job_flow_round_trips_through_the_library_types(ads, googleads):
    from google.longrunning import operations_pb2
    from google.protobuf import json_format

    server, emulator = googleads
    customer = "1234567890"
    enums = ads.enums

    create = ads.get_type("CreateOfflineUserDataJobRequest")
    create.customer_id = customer
    create.job.type_ = enums.OfflineUserDataJobTypeEnum.CUSTOMER_MATCH_USER_LIST
    metadata = create.job.customer_match_user_list_metadata
    metadata.user_list = f"customers/{customer}/userLists/555"
    metadata.consent.ad_user_data = enums.ConsentStatusEnum.GRANTED
    metadata.consent.ad_personalization = enums.ConsentStatusEnum.GRANTED
    created = parse(
        rest(server, f"customers/{customer}/offlineUserDataJobs:create", create, drop="customerId"),
        ads.get_type("CreateOfflineUserDataJobResponse"),
    )
    job = created.resource_name
    assert job.startswith(f"customers/{customer}/offlineUserDataJobs/")

    add = ads.get_type("AddOfflineUserDataJobOperationsRequest")
    add.resource_name = job
    add.enable_partial_failure = True
    for email in ("ann@example.com", "not-hashed@example.com", "bob@example.com"):
        operation = ads.get_type("OfflineUserDataJobOperation")
        identifier = ads.get_type("UserIdentifier")
        identifier.hashed_email = email if email.startswith("not-hashed") else h(email)
        operation.create.user_identifiers.append(identifier)
        add.operations.append(operation)
    address = ads.get_type("UserIdentifier")
    address.address_info.hashed_first_name = h("ann")
    address.address_info.hashed_last_name = h("lee")
    address.address_info.country_code = "US"
    address.address_info.postal_code = "94025"
    add.operations[0].create.user_identifiers.append(address)
    added = parse(
        rest(server, f"{job}:addOperations", add, drop="resourceName"),
        ads.get_type("AddOfflineUserDataJobOperationsResponse"),
    )
    failure = ads.get_type("GoogleAdsFailure")
    assert added.partial_failure_error.details[0].Unpack(failure)
    (error,) = failure.errors
    job_errors = ads.get_type("OfflineUserDataJobErrorEnum").OfflineUserDataJobError
    assert job_errors.Name(error.error_code.offline_user_data_job_error) == "INVALID_SHA256_FORMAT"
    assert (error.location.field_path_elements[0].field_name, error.location.field_path_elements[0].index) == (
        "operations",
        1,
    )

    run = ads.get_type("RunOfflineUserDataJobRequest")
    run.resource_name = job
    operation = parse(rest(server, f"{job}:run", run, drop="resourceName"), operations_pb2.Operation())
    assert operation.name.startswith(f"customers/{customer}/operations/")

    search = ads.get_type("SearchGoogleAdsRequest")
    search.customer_id = customer
    search.query = (
        "SELECT offline_user_data_job.resource_name, offline_user_data_job.status "
        f"FROM offline_user_data_job WHERE offline_user_data_job.resource_name = '{job}'"
    )
    statuses = []
    for _ in range(2):
        answer = parse(
            rest(server, f"customers/{customer}/googleAds:search", search, drop="customerId"),
            ads.get_type("SearchGoogleAdsResponse"),
        )
        (row,) = answer.results
        assert row.offline_user_data_job.resource_name == job
        assert list(answer.field_mask.paths) == ["offline_user_data_job.resource_name", "offline_user_data_job.status"]
        statuses.append(row.offline_user_data_job.status)
    status_enum = enums.OfflineUserDataJobStatusEnum
    assert statuses == [status_enum.RUNNING, status_enum.SUCCESS]

    held = emulator.snapshot()["user_lists"][f"customers/{customer}/userLists/555"]
    assert held["emails"] == sorted([h("ann@example.com"), h("bob@example.com")])
    assert held["addresses"] == [[h("ann"), h("lee"), "US", "94025"]]

    # an account Google no longer allowlists: the error body parses as a Status whose detail is a GoogleAdsFailure
    from google.rpc import status_pb2

    create.customer_id = "2222222222"
    create.job.customer_match_user_list_metadata.user_list = "customers/2222222222/userLists/556"
    refused = rest(server, "customers/2222222222/offlineUserDataJobs:create", create, drop="customerId")
    assert refused.status_code == 403
    error_body = {k: v for k, v in refused.json()["error"].items() if k != "status"}
    status = json_format.ParseDict(error_body, status_pb2.Status(), ignore_unknown_fields=False)
    assert status.details[0].Unpack(failure)
    not_allowlisted = ads.get_type("NotAllowlistedErrorEnum").NotAllowlistedError
    assert not_allowlisted.Name(failure.errors[0].error_code.not_allowlisted_error) == (
        "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE"
    )
