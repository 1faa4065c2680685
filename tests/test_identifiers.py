"""Each platform's normalisation and hashing rules, tested against the examples the
platforms publish (Google's Data Manager "Format user data" guide and quickstart, Meta's
customer-list formatting guide), and against hashes captured from the official SDKs'
requests (the SDK_REQUESTS notes: ann@example.com, Ann Lee, 94025, US)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from destinations import identifiers as ids

ANN_EMAIL_SHA256 = "71d4f55f72fa128dfb468a1a3901507c804b74316488744d769d7f4b16696476"
ANN_SHA256 = "49915e0d7d4b402e3017d010bc1c0e83cac6c797d6c16e66340fe3268693a6a1"
LEE_SHA256 = "1508b697895abf03d55c3841f59236ab92c9ba6ba89795c8337fcf392fdee8b4"


# ---------------------------------------------------------------- Google (Data Manager)


@pytest.mark.parametrize(
    ("given_email", "expected"),
    [
        # the guide's own examples
        ("cloudy.sanfrancisco+shopping@gmail.com", "cloudysanfrancisco@gmail.com"),
        ("user.name+NYC@Example.com", "user.name+nyc@example.com"),
        # the quickstart's sample file: whitespace anywhere, mixed case, GMAIL.com
        (" AlexJ@cymbalgroup.com", "alexj@cymbalgroup.com"),
        ("baklavainthebalkans@gmail.com  ", "baklavainthebalkans@gmail.com"),
        ("cloudySanFrancisco@GMAIL.com", "cloudysanfrancisco@gmail.com"),
        ("quinn@CYMBALGROUP.com", "quinn@cymbalgroup.com"),
        # googlemail.com is gmail too; intermediate whitespace goes
        ("Jane.Doe+news@googlemail.com", "janedoe@googlemail.com"),
        ("dana @ example.com", "dana@example.com"),
    ],
)
def test_google_email_normalisation(given_email: str, expected: str):
    assert ids.google_email(given_email) == expected


def test_google_keeps_dots_and_plus_outside_gmail():
    assert ids.google_email("first.last+tag@example.org") == "first.last+tag@example.org"


@pytest.mark.parametrize("bad", [None, "", "   ", "not-an-email", "a@b", "+tag@gmail.com"])
def test_google_email_refuses_what_is_not_an_address(bad):
    assert ids.google_email(bad) is None


@pytest.mark.parametrize(
    ("phone", "region", "expected"),
    [
        ("(800)555-0100", "US", "+18005550100"),  # the guide's example
        ("+1 800 555 0100", None, "+18005550100"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("0044 20 7946 0958", None, "+442079460958"),
        ("+49 30 901820", None, "+4930901820"),
    ],
)
def test_google_phone_is_e164_with_plus(phone: str, region: str | None, expected: str):
    assert ids.google_phone(phone, region) == expected


@pytest.mark.parametrize("bad", ["", "12", "phone", "+1 555"])
def test_google_phone_refuses_impossible_numbers(bad: str):
    assert ids.google_phone(bad, "US") is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Ann", "ann"), ("  ANN  ", "ann"), ("Mrs. Jane", "jane"), ("Smith Jr.", "smith"), ("Mary  Ann", "mary ann")],
)
def test_google_names_lower_case_without_prefix_or_suffix(name: str, expected: str):
    assert ids.google_name(name) == expected


def test_google_postal_codes_are_sent_as_the_guide_says():
    assert ids.google_postal_code("94025", "US") == "94025"
    assert ids.google_postal_code("94025-1234", "US") == "94025-1234"  # ZIP+4 may improve matching
    assert ids.google_postal_code("SW1A 1AA", "GB") == "SW1A 1AA"


def test_google_user_identifiers_match_the_official_client_request():
    """The Data Manager request the official client sends for Ann Lee (SDK_REQUESTS notes)."""
    identifiers = ids.google_user_identifiers(
        {"email": "Ann@Example.com", "first_name": "Ann", "last_name": "Lee", "country": "us", "zip": "94025"}
    )
    assert identifiers == [
        {"emailAddress": ANN_EMAIL_SHA256},
        {"address": {"givenName": ANN_SHA256, "familyName": LEE_SHA256, "regionCode": "US", "postalCode": "94025"}},
    ]


def test_google_address_needs_all_four_parts():
    partial = ids.google_user_identifiers({"first_name": "Ann", "last_name": "Lee", "country": "US"})
    assert partial == []


def test_google_base64_encoding():
    import base64

    (entry,) = ids.google_user_identifiers({"email": "ann@example.com"}, encoding="BASE64")
    assert base64.b64decode(entry["emailAddress"]).hex() == ANN_EMAIL_SHA256


def test_google_base64_is_the_same_digest_as_hex():
    """Data Manager takes a hash hex- or base64-encoded (``encoding``); both are one digest."""
    encoded = ids.sha256_base64("ann@example.com")
    assert ids.is_sha256_base64(encoded) and not ids.is_sha256_hex(encoded)
    assert ids.base64_to_hex(encoded) == ANN_EMAIL_SHA256
    assert ids.hex_to_base64(ANN_EMAIL_SHA256) == encoded


@pytest.mark.parametrize(
    "bad",
    [
        ANN_EMAIL_SHA256,  # hex is valid base64 text, but 48 bytes, not a SHA-256 digest
        "YW5uQGV4YW1wbGUuY29t",  # base64 of the raw email
        "not base64 at all!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        None,
    ],
)
def test_google_base64_hash_check_refuses_what_is_not_a_digest(bad):
    assert not ids.is_sha256_base64(bad)


# ---------------------------------------------------------------- Meta


@pytest.mark.parametrize(
    ("phone", "region", "expected"),
    [
        # Meta's customer-list guide: "1-234-567-8910", "12345678910", "+44 844 412 4653"
        ("1-234-567-8910", None, "12345678910"),
        ("12345678910", None, "12345678910"),
        ("+44 844 412 4653", None, "448444124653"),
        # no leading zeros: an international 00 prefix goes
        ("0044 844 412 4653", None, "448444124653"),
        # a national number with the record's country gets its country code
        ("07700 900123", "GB", "447700900123"),
        ("+16505551234", None, "16505551234"),
    ],
)
def test_meta_phone_digits_with_country_code_no_leading_zeros(phone: str, region: str | None, expected: str):
    assert ids.meta_phone(phone, region) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    # the guide's first-name examples "John", "F.", "Émilie": accents kept, punctuation gone
    [("John", "john"), ("F.", "f"), ("Émilie", "émilie"), ("Mary-Ann O'Neil", "maryannoneil"), ("Smith", "smith")],
)
def test_meta_names_are_lower_case_letters(name: str, expected: str):
    assert ids.meta_name(name) == expected


def test_meta_name_accents_are_one_form():
    """É typed as E + combining accent hashes like the precomposed É."""
    assert ids.meta_name("E\u0301milie") == ids.meta_name("\u00c9milie")


@pytest.mark.parametrize(
    ("city", "expected"),
    [("Paris", "paris"), ("London", "london"), ("New York", "newyork"), ("Menlo Park", "menlopark")],
)
def test_meta_city(city: str, expected: str):
    assert ids.meta_city(city) == expected


@pytest.mark.parametrize(
    ("state", "expected"), [("AZ", "az"), ("California", "ca"), ("New York", "ny"), ("Ontario", "ontario")]
)
def test_meta_state(state: str, expected: str):
    assert ids.meta_state(state) == expected


@pytest.mark.parametrize(
    ("zip_code", "country", "expected"),
    [
        ("94025", "US", "94025"),
        ("94025-1234", "US", "94025"),
        ("SW1A 1AA", "GB", "sw1a1aa"),
        ("94025-1234", None, "94025"),
    ],
)
def test_meta_zip(zip_code: str, country: str | None, expected: str):
    assert ids.meta_zip(zip_code, country) == expected


def test_meta_email_keeps_gmail_dots():
    """Meta, unlike Google, only trims and lower-cases (its example: your.name@gmail.com)."""
    assert ids.meta_email(" Your.Name@Gmail.com ") == "your.name@gmail.com"


def test_meta_row_matches_the_official_sdk_request():
    """EMAIL, FN and COUNTRY hashes as in the facebook-business SDK's request; unknown → "";
    EXTERN_ID in the clear."""
    schema = ["EMAIL", "PHONE", "FN", "LN", "COUNTRY", "EXTERN_ID"]
    row = ids.meta_row(
        {"email": "Ann@Example.com", "first_name": "Ann", "country": "US", "external_id": "cust-1"}, schema
    )
    assert row == [ANN_EMAIL_SHA256, "", ANN_SHA256, "", hashlib.sha256(b"us").hexdigest(), "cust-1"]


def test_meta_row_reads_a_national_phone_with_the_row_country():
    row = ids.meta_row({"phone": "07700 900123", "country": "GB"}, ["PHONE"])
    assert row == [hashlib.sha256(b"447700900123").hexdigest()]


# ---------------------------------------------------------------- shared


def test_mailchimp_subscriber_hash_is_md5_of_lower_case_email():
    # the member path the official Mailchimp SDK requested for Ann@Example.com
    assert ids.mailchimp_subscriber_hash("Ann@Example.com") == hashlib.md5(b"ann@example.com").hexdigest()


def test_mailchimp_subscriber_hash_matches_mailchimps_published_example():
    # Mailchimp's guide "Manage subscribers with the Mailchimp API" (Identify subscribers)
    assert ids.mailchimp_subscriber_hash("Urist.McVankab@freddiesjokes.com") == "62eeb292278cc15f5817cb78f7790b08"
    assert ids.mailchimp_subscriber_hash("  urist.mcvankab@FREDDIESJOKES.com ") == "62eeb292278cc15f5817cb78f7790b08"
    assert ids.mailchimp_email(" Urist.McVankab@freddiesjokes.com") == "urist.mcvankab@freddiesjokes.com"


@given(st.text())
def test_hashes_are_always_lower_case_hex(value: str):
    digest = ids.sha256_hex(value)
    assert ids.is_sha256_hex(digest)


@given(st.text(max_size=40))
def test_normalisers_never_raise_and_never_return_blank(value: str):
    for normalise in (ids.google_email, ids.meta_email, ids.meta_name, ids.meta_city, ids.meta_state, ids.google_name):
        result = normalise(value)
        assert result is None or (isinstance(result, str) and result.strip() == result and result)
    for phone in (ids.meta_phone(value), ids.google_phone(value, "US")):
        assert phone is None or phone.lstrip("+").isdigit()


def test_raw_values_are_not_hashes():
    assert not ids.is_sha256_hex("ann@example.com")
    assert not ids.is_sha256_hex(ANN_EMAIL_SHA256.upper())
    assert ids.is_sha256_hex(ANN_EMAIL_SHA256)
