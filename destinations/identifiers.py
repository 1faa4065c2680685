"""Every platform's identifier rules in one place: normalisation, then hashing.

The warehouse normalises identifiers once, in staging (email trimmed and lower-cased,
phone in E.164, names single-spaced), so what reaches a connector is already clean. Each
platform then asks for its own final form before hashing, and those forms differ:

=============  ==========================================  ==========================================
identifier     Meta Custom Audiences (``schema`` keys)      Google Data Manager / Customer Match
=============  ==========================================  ==========================================
email          trim, lower-case                             remove all whitespace, lower-case; for
                                                            gmail.com / googlemail.com also drop dots
                                                            and any ``+suffix`` before ``@``
phone          digits only, with country code, no           E.164 with the ``+``
               leading zeros
first / last   lower-case letters only (accents kept,       lower-case, trimmed, no prefix (Mrs.) or
name           no punctuation or spaces)                    suffix (Jr.)
city           lower-case letters only, no spaces           (not sent)
state          2-letter code for US states, else letters    (not sent)
zip            lower-case, no spaces or dashes; US: the     sent unhashed: US 5 digits or ZIP+4,
               first 5 digits                               elsewhere no extension
country        lower-case ISO 3166-1 alpha-2                sent unhashed, upper-case ISO code
external id    not hashed                                   (not sent)
=============  ==========================================  ==========================================

Every value an ad platform receives is the SHA-256 lower-case hex of the normalised value
(:func:`sha256_hex`), except the few the platforms take in the clear (Meta's EXTERN_ID,
Google's region and postal code). A value that normalises to nothing is ``None``: the
caller leaves that identifier out (Meta then sends ``""`` for that column).

Sources: Meta's Marketing API reference for Custom Audiences (hashing and normalising
customer data) and Google's Data Manager guide "Format user data"; the examples those
pages publish are the cases in ``tests/test_identifiers.py``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

import phonenumbers

# --------------------------------------------------------------------------- hashing

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
#: SHA-256 of the empty string: Meta's SDK sends it for an unknown value; it means "empty".
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def sha256_hex(value: str) -> str:
    """Lower-case hex SHA-256 of the UTF-8 bytes of ``value``."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def is_sha256_hex(value: Any) -> bool:
    """True for a 64-character lower-case hex string (what ad platforms accept as a hash)."""
    return isinstance(value, str) and _SHA256_HEX.fullmatch(value) is not None


def mailchimp_email(email: Any) -> str:
    """The form Mailchimp matches a member by: the email trimmed and lower-cased (a member
    is the same person whatever the case of the address sent). Not validated: Mailchimp
    judges the address itself and answers per member."""
    return str(email).strip().lower()


def mailchimp_subscriber_hash(email: Any) -> str:
    """Mailchimp addresses a member by the MD5 hex of the lower-cased email
    (``Urist.McVankab@freddiesjokes.com`` → ``62eeb292278cc15f5817cb78f7790b08``)."""
    return hashlib.md5(mailchimp_email(email).encode("utf-8")).hexdigest()


def sha256_base64(value: str) -> str:
    """Standard base64 of the SHA-256 digest of ``value`` (Data Manager's ``BASE64`` encoding)."""
    return base64.b64encode(hashlib.sha256(value.encode("utf-8")).digest()).decode("ascii")


def is_sha256_base64(value: Any) -> bool:
    """True for standard base64 (with padding) of exactly 32 bytes: a SHA-256 digest."""
    if not isinstance(value, str) or len(value) != 44:
        return False
    try:
        return len(base64.b64decode(value, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def hex_to_base64(digest_hex: str) -> str:
    """A hex SHA-256 digest re-encoded as base64 (the same hash, Data Manager's other encoding)."""
    return base64.b64encode(bytes.fromhex(digest_hex)).decode("ascii")


def base64_to_hex(digest_base64: str) -> str:
    """A base64 SHA-256 digest as lower-case hex."""
    return base64.b64decode(digest_base64, validate=True).hex()


# --------------------------------------------------------------------------- shared rules

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_WHITESPACE = re.compile(r"\s+")


def _text(value: Any) -> str | None:
    """A value as stripped text; None, empty and whitespace-only become None."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def email(value: Any) -> str | None:
    """Trimmed, lower-cased email; None unless it looks like local@domain.tld."""
    text = _text(value)
    if text is None:
        return None
    text = text.lower()
    return text if _EMAIL.fullmatch(text) else None


def e164(value: Any, default_region: str | None = None) -> str | None:
    """A phone number in E.164 (``+<country code><number>``), or None if it is not a valid number.

    Numbers already in international form need no region; a national number needs the
    record's country (``default_region``, an ISO code) to be read.
    """
    text = _text(value)
    if text is None:
        return None
    if text.startswith("00"):
        text = "+" + text[2:]
    region = default_region.upper() if default_region else None
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _letters_only(value: Any) -> str | None:
    """Lower-cased letters of any script (accents kept): no digits, punctuation or spaces."""
    text = _text(value)
    if text is None:
        return None
    text = unicodedata.normalize("NFC", text).lower()
    letters = "".join(ch for ch in text if ch.isalpha())
    return letters or None


def country_code(value: Any) -> str | None:
    """An ISO 3166-1 alpha-2 code, upper-case; None for anything that is not two letters."""
    text = _text(value)
    if text is None or len(text) != 2 or not text.isalpha() or not text.isascii():
        return None
    return text.upper()


# --------------------------------------------------------------------------- Meta

#: US states and territories by full name, for Meta's ST rule ("2-letter code for US states").
US_STATES = {
    "alabama": "al",
    "alaska": "ak",
    "arizona": "az",
    "arkansas": "ar",
    "california": "ca",
    "colorado": "co",
    "connecticut": "ct",
    "delaware": "de",
    "districtofcolumbia": "dc",
    "florida": "fl",
    "georgia": "ga",
    "hawaii": "hi",
    "idaho": "id",
    "illinois": "il",
    "indiana": "in",
    "iowa": "ia",
    "kansas": "ks",
    "kentucky": "ky",
    "louisiana": "la",
    "maine": "me",
    "maryland": "md",
    "massachusetts": "ma",
    "michigan": "mi",
    "minnesota": "mn",
    "mississippi": "ms",
    "missouri": "mo",
    "montana": "mt",
    "nebraska": "ne",
    "nevada": "nv",
    "newhampshire": "nh",
    "newjersey": "nj",
    "newmexico": "nm",
    "newyork": "ny",
    "northcarolina": "nc",
    "northdakota": "nd",
    "ohio": "oh",
    "oklahoma": "ok",
    "oregon": "or",
    "pennsylvania": "pa",
    "rhodeisland": "ri",
    "southcarolina": "sc",
    "southdakota": "sd",
    "tennessee": "tn",
    "texas": "tx",
    "utah": "ut",
    "vermont": "vt",
    "virginia": "va",
    "washington": "wa",
    "westvirginia": "wv",
    "wisconsin": "wi",
    "wyoming": "wy",
    "puertorico": "pr",
    "guam": "gu",
    "americansamoa": "as",
    "virginislands": "vi",
}


def meta_email(value: Any) -> str | None:
    """EMAIL: trimmed and lower-cased."""
    return email(value)


def meta_phone(value: Any, default_region: str | None = None) -> str | None:
    """PHONE: digits only, with the country code, no leading zeros (``+44 20 …`` → ``4420…``).

    A number in national form is read with ``default_region``; without one, the digits are
    taken as already carrying a country code, as Meta's reference says they must.
    """
    text = _text(value)
    if text is None:
        return None
    international = e164(text, default_region) if (text.startswith(("+", "00")) or default_region) else None
    digits = re.sub(r"[^0-9]", "", international or text).lstrip("0")
    return digits if 7 <= len(digits) <= 15 else None


def meta_name(value: Any) -> str | None:
    """FN / LN: lower-case letters only; accented letters are kept (UTF-8), punctuation and spaces go."""
    return _letters_only(value)


def meta_city(value: Any) -> str | None:
    """CT: lower-case letters only, no punctuation, no spaces (``Menlo Park`` → ``menlopark``)."""
    return _letters_only(value)


def meta_state(value: Any) -> str | None:
    """ST: a US state as its 2-letter code (``California`` → ``ca``); others letters only, lower-case."""
    letters = _letters_only(value)
    if letters is None:
        return None
    return US_STATES.get(letters, letters)


def meta_zip(value: Any, country: Any = None) -> str | None:
    """ZIP: lower-case without spaces or dashes; a US code keeps only its first 5 digits."""
    text = _text(value)
    if text is None:
        return None
    code = country_code(country)
    if code == "US" or (code is None and re.fullmatch(r"[0-9]{5}(-?[0-9]{4})?", text)):
        digits = re.sub(r"[^0-9]", "", text.split("-")[0])
        return digits[:5] if len(digits) >= 5 else None
    compact = re.sub(r"[\s\-]", "", text).lower()
    return compact or None


def meta_country(value: Any) -> str | None:
    """COUNTRY: lower-case ISO 3166-1 alpha-2."""
    code = country_code(value)
    return code.lower() if code else None


def meta_external_id(value: Any) -> str | None:
    """EXTERN_ID: sent as is (trimmed), never hashed."""
    return _text(value)


#: Meta schema key -> (normaliser, hashed?). The order is the order Meta's reference lists them.
META_KEYS: dict[str, tuple[Any, bool]] = {
    "EMAIL": (meta_email, True),
    "PHONE": (meta_phone, True),
    "FN": (meta_name, True),
    "LN": (meta_name, True),
    "CT": (meta_city, True),
    "ST": (meta_state, True),
    "ZIP": (meta_zip, True),
    "COUNTRY": (meta_country, True),
    "EXTERN_ID": (meta_external_id, False),
}

#: our identifier names (a sync's ``identifiers`` keys) -> Meta schema key
META_IDENTIFIERS: dict[str, str] = {
    "email": "EMAIL",
    "phone": "PHONE",
    "first_name": "FN",
    "last_name": "LN",
    "city": "CT",
    "state": "ST",
    "zip": "ZIP",
    "country": "COUNTRY",
    "external_id": "EXTERN_ID",
}


def meta_value(key: str, value: Any, *, country: Any = None) -> str:
    """One cell of a Meta ``data`` row: the hash of the normalised value, ``""`` if unknown.

    ``country`` (an ISO code) helps read a national phone number and a ZIP code.
    """
    normalise, hashed = META_KEYS[key]
    if key == "PHONE":
        normalised = meta_phone(value, country_code(country))
    elif key == "ZIP":
        normalised = meta_zip(value, country)
    else:
        normalised = normalise(value)
    if normalised is None:
        return ""
    return sha256_hex(normalised) if hashed else normalised


def meta_row(identifiers: Mapping[str, Any], schema: list[str]) -> list[str]:
    """A Meta ``data`` row for ``schema`` from our identifier names (``email``, ``phone``, …)."""
    by_key = {META_IDENTIFIERS[name]: value for name, value in identifiers.items() if name in META_IDENTIFIERS}
    country = by_key.get("COUNTRY")
    return [meta_value(key, by_key.get(key), country=country) for key in schema]


# --------------------------------------------------------------------------- Google

GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
_NAME_PREFIXES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame"})
_NAME_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv", "phd", "md", "esq"})


def google_email(value: Any) -> str | None:
    """Lower-cased, every whitespace removed; for gmail.com / googlemail.com the dots and any
    ``+suffix`` before the ``@`` go too (``cloudy.sanfrancisco+shopping@gmail.com`` →
    ``cloudysanfrancisco@gmail.com``)."""
    if value is None:
        return None
    text = _WHITESPACE.sub("", str(value)).lower()
    if not _EMAIL.fullmatch(text):
        return None
    local, domain = text.rsplit("@", 1)
    if domain in GMAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
        if not local:
            return None
    return f"{local}@{domain}"


def google_phone(value: Any, default_region: str | None = None) -> str | None:
    """E.164 with the plus sign (``(800)555-0100`` in the US → ``+18005550100``)."""
    return e164(value, default_region)


def google_name(value: Any, *, drop: frozenset[str] = _NAME_PREFIXES | _NAME_SUFFIXES) -> str | None:
    """Lower-cased and trimmed, inner spaces single, without a title (Mrs.) or suffix (Jr.)."""
    text = _text(value)
    if text is None:
        return None
    words = [word for word in _WHITESPACE.split(text.lower()) if word.strip(".,") not in drop]
    name = " ".join(words).strip(" ,")
    return name or None


def google_postal_code(value: Any, country: Any = None) -> str | None:
    """Unhashed: a US code as 5 digits or ZIP+4; elsewhere the code without an extension."""
    text = _text(value)
    if text is None:
        return None
    if country_code(country) in (None, "US") and re.fullmatch(r"[0-9]{5}(-[0-9]{4})?", text):
        return text
    if country_code(country) == "US":
        digits = re.sub(r"[^0-9]", "", text)
        return digits[:5] if len(digits) >= 5 else None
    return text.upper()


def google_user_identifiers(identifiers: Mapping[str, Any], *, encoding: str = "HEX") -> list[dict[str, Any]]:
    """The ``userIdentifiers`` of one audience member, from our identifier names.

    Each entry holds exactly one kind: ``emailAddress``, ``phoneNumber`` (hashed), or an
    ``address`` with hashed given and family names, an unhashed region and postal code —
    sent only when all four are known, as Customer Match requires.
    """
    digest = sha256_hex if encoding == "HEX" else sha256_base64
    country = country_code(identifiers.get("country"))
    out: list[dict[str, Any]] = []
    if (normalised := google_email(identifiers.get("email"))) is not None:
        out.append({"emailAddress": digest(normalised)})
    if (normalised := google_phone(identifiers.get("phone"), country)) is not None:
        out.append({"phoneNumber": digest(normalised)})
    given = google_name(identifiers.get("first_name"))
    family = google_name(identifiers.get("last_name"))
    postal = google_postal_code(identifiers.get("zip"), country)
    if given and family and country and postal:
        out.append(
            {
                "address": {
                    "givenName": digest(given),
                    "familyName": digest(family),
                    "regionCode": country,
                    "postalCode": postal,
                }
            }
        )
    return out


#: identifier names each ad platform can match on (a sync maps these to sync_profile_fields columns)
GOOGLE_IDENTIFIERS = frozenset({"email", "phone", "first_name", "last_name", "zip", "country"})
