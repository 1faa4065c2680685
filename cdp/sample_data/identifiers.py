"""Emails, phones and country spellings: the identifiers that link (or fail to link) records.

Everything here is built once per chunk as a small *book* of strings — every spelling a
person's identifier can take in a source — and records then pick an entry by integer
index. That keeps the per-row work in numpy and the string work proportional to the
number of people, not the number of events.

Uniqueness is by construction: an email's local part ends in the person's global
number, and a phone's subscriber digits are a bijection of it, so two people never
share an identifier by accident — only the injected noise (family phones, shared
devices, placeholders) makes identifiers ambiguous, and ground_truth.noise says where.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

COUNTRIES: tuple[str, ...] = ("US", "GB", "DE", "FR")
COUNTRY_SHARES: tuple[float, ...] = (0.40, 0.20, 0.20, 0.20)
CURRENCIES: tuple[str, ...] = ("USD", "GBP", "EUR", "EUR")
COUNTRY_CALLING_CODES: tuple[str, ...] = ("1", "44", "49", "33")
COUNTRY_SPELLINGS: tuple[tuple[str, ...], ...] = (
    ("US", "us", "USA", "United States"),
    ("GB", "gb", "UK", "United Kingdom"),
    ("DE", "de", "Germany", "Deutschland"),
    ("FR", "fr", "France", "FRA"),
)
"""Index 0 is the ISO code; the others are the messy variants."""

EMAIL_DOMAINS: tuple[tuple[str, ...], ...] = (
    ("mailbox.example", "inbox.example", "postbox.example"),
    ("mailbox.example", "post-uk.example", "inbox.example"),
    ("webmail.example", "post-de.example", "mailbox.example"),
    ("courrier.example", "boite.example", "mailbox.example"),
)
"""RFC 2606 reserved domains: demo data must never reach a real inbox."""

JUNK_EMAILS: tuple[str, ...] = ("test@test.com", "noemail@example.com", "none@none.com")
JUNK_PHONES: tuple[str, ...] = ("0000000000", "1111111111", "1234567890")

# Phone number plans. Every prefix below was checked with phonenumbers.is_valid_number
# for its region across its whole free-digit range (see tests/test_generator.py).
US_AREA_CODES: tuple[int, ...] = (
    201, 202, 206, 212, 213, 214, 215, 216, 303, 305, 310, 312, 313, 314, 317, 323, 402,
    404, 408, 410, 412, 415, 503, 504, 505, 512, 513, 602, 610, 612, 614, 615, 617, 619,
    702, 704, 713, 714, 718, 720, 801, 804, 813, 816, 818, 901, 904, 916, 919, 972,
)  # fmt: skip
US_EXCHANGES = np.array([e for e in range(200, 1000) if e != 555], dtype=np.int64)
"""Central-office codes 200-999 without the fictional 555."""
GB_MOBILE_PREFIXES: tuple[int, ...] = (71, 72, 73, 74)  # 07[1-4]x xxx xxxx, 10-digit national number
DE_MOBILE_PREFIXES: tuple[int, ...] = (151, 152, 157, 159, 160, 162, 163, 170, 171, 172, 173, 174, 175, 176)
FR_MOBILE_PREFIXES: tuple[int, ...] = (60, 61, 62, 64, 65, 66, 67, 68, 73, 74, 75, 76, 77, 78)

EMAIL_VARIANTS: tuple[str, ...] = (
    "canonical",
    "capitalized",
    "upper",
    "pad_left",
    "pad_right",
    "pad_both",
    "capitalized_pad_right",
)
EMAIL_CASE_VARIANTS: tuple[int, ...] = (1, 2)
EMAIL_PAD_VARIANTS: tuple[int, ...] = (3, 4, 5)
EMAIL_CASE_AND_PAD_VARIANT = 6

PHONE_VARIANTS: tuple[str, ...] = ("e164", "international", "international_00", "national", "national_compact")
PHONE_INTERNATIONAL_VARIANTS: tuple[int, ...] = (1, 2)
PHONE_NATIONAL_VARIANTS: tuple[int, ...] = (3, 4)


def _permute(x: np.ndarray, size: int) -> np.ndarray:
    """A fixed pseudo-random bijection of [0, size): a 4-round Feistel network over the
    next power of four, cycle-walked back into range. Unlike x * k mod size, it does not
    turn consecutive person numbers into look-alike phone numbers."""
    half = max(1, (int(size - 1).bit_length() + 1) // 2)
    mask = np.uint64((1 << half) - 1)

    def rounds(v: np.ndarray) -> np.ndarray:
        left, right = v >> np.uint64(half), v & mask
        for key in (0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F):
            mixed = ((right * np.uint64(key)) >> np.uint64(7)) ^ (right * np.uint64(0x165667B1))
            left, right = right, left ^ (mixed & mask)
        return (left << np.uint64(half)) | right

    v = rounds(x.astype(np.uint64))
    outside = v >= size
    while outside.any():
        v[outside] = rounds(v[outside])
        outside = v >= size
    return v.astype(np.int64)


def national_numbers(country: np.ndarray, person_no: np.ndarray) -> np.ndarray:
    """National significant number (as an integer) of each person's mobile phone.

    The person number is scrambled by a bijection over the country's whole number
    space (prefixes x free digits), so distinct people always get distinct numbers and
    neighbours do not get look-alike ones.
    """
    nsn = np.zeros(len(person_no), dtype=np.int64)
    plans: tuple[tuple[tuple[int, ...], int], ...] = (
        (US_AREA_CODES, len(US_EXCHANGES) * 10_000),
        (GB_MOBILE_PREFIXES, 10**8),
        (DE_MOBILE_PREFIXES, 10**8),
        (FR_MOBILE_PREFIXES, 10**7),
    )
    for code, (prefixes, free_digits_space) in enumerate(plans):
        mask = country == code
        space = len(prefixes) * free_digits_space
        number = person_no[mask]
        if number.size and number.max() >= space:
            raise ValueError(f"too many people for the {COUNTRIES[code]} phone plan")
        scrambled = _permute(number, space)
        prefix = np.asarray(prefixes, dtype=np.int64)[scrambled % len(prefixes)]
        free = scrambled // len(prefixes)
        if code == 0:
            nsn[mask] = prefix * 10**7 + US_EXCHANGES[free // 10_000] * 10_000 + free % 10_000
        else:
            nsn[mask] = prefix * free_digits_space + free
    return nsn


def _groups(digits: pa.Array, bounds: tuple[int, ...]) -> list[pa.Array]:
    starts = (0, *bounds[:-1])
    return [pc.utf8_slice_codeunits(digits, start, stop) for start, stop in zip(starts, bounds, strict=True)]


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _phone_variants(country: int, nsn: np.ndarray) -> list[pa.Array]:
    """Every spelling in PHONE_VARIANTS of one country's national numbers."""
    digits = pc.cast(pa.array(nsn), pa.string())
    cc = COUNTRY_CALLING_CODES[country]
    bounds = {0: (3, 6, 10), 1: (4, 10), 2: (3, 11), 3: (1, 3, 5, 7, 9)}[country]
    groups = _groups(digits, bounds)
    spaced = pc.binary_join_element_wise(*groups, " ")
    if country == 0:  # US: (415) 555-2671 and 415-555-2671
        national = _join("(", groups[0], ") ", groups[1], "-", groups[2])
        compact = pc.binary_join_element_wise(*groups, "-")
    elif country == 2:  # DE: 0151 23456789 and 0151/23456789
        national = _join("0", spaced)
        compact = _join("0", groups[0], "/", groups[1])
    else:  # GB: 07123 456789 / 07123456789, FR: 06 12 34 56 78 / 0612345678
        national = _join("0", spaced)
        compact = _join("0", digits)
    # The 00 prefix is how Europeans dial abroad; a US number is written +1 (415) 555-2671 instead,
    # since 001 is not a valid way to dial out of the US.
    international_00 = _join("+1 ", national) if country == 0 else _join("00", cc, " ", spaced)
    return [_join("+", cc, digits), _join("+", cc, " ", spaced), international_00, national, compact]


def _scatter(parts_by_group: list[pa.Array], order: np.ndarray) -> pa.Array:
    """Undo a stable sort: parts were built in ``order``; return them in original order."""
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return pc.take(pa.concat_arrays(parts_by_group), pa.array(inverse))


@dataclass(frozen=True)
class PhoneBook:
    """All spellings of the chunk's people's phones, plus the placeholder phones.

    Entry ``variant * people + i`` is person i's phone in PHONE_VARIANTS[variant];
    entry ``junk_base + j`` is JUNK_PHONES[j].
    """

    values: pa.Array
    people: int

    @property
    def junk_base(self) -> int:
        return len(PHONE_VARIANTS) * self.people

    def e164(self) -> pa.Array:
        return self.values.slice(0, self.people)

    def index(self, person: np.ndarray, variant: np.ndarray) -> np.ndarray:
        return variant.astype(np.int64) * self.people + person


def build_phone_book(country: np.ndarray, person_no: np.ndarray) -> PhoneBook:
    nsn = national_numbers(country, person_no)
    order = np.argsort(country, kind="stable")
    by_variant: list[list[pa.Array]] = [[] for _ in PHONE_VARIANTS]
    for code in range(len(COUNTRIES)):
        members = order[country[order] == code]
        for variant, spelled in enumerate(_phone_variants(code, nsn[members])):
            by_variant[variant].append(spelled)
    columns = [_scatter(parts, order) for parts in by_variant]
    return PhoneBook(values=pa.concat_arrays([*columns, pa.array(JUNK_PHONES)]), people=len(person_no))


@dataclass(frozen=True)
class EmailBook:
    """All spellings of the chunk's people's current and previous emails, plus placeholders.

    Entry ``(generation * len(EMAIL_VARIANTS) + variant) * people + i`` is person i's
    email (generation 0 = current, 1 = previous) in EMAIL_VARIANTS[variant].
    """

    values: pa.Array
    people: int

    @property
    def junk_base(self) -> int:
        return 2 * len(EMAIL_VARIANTS) * self.people

    def current(self) -> pa.Array:
        return self.values.slice(0, self.people)

    def previous(self) -> pa.Array:
        return self.values.slice(len(EMAIL_VARIANTS) * self.people, self.people)

    def index(self, person: np.ndarray, previous: np.ndarray, variant: np.ndarray) -> np.ndarray:
        generation = previous.astype(np.int64)
        return (generation * len(EMAIL_VARIANTS) + variant) * self.people + person


LOCAL_PART_PATTERNS = 5


def _email_addresses(
    first: pa.Array, last: pa.Array, number: pa.Array, pattern: np.ndarray, domain: pa.Array
) -> pa.Array:
    """``pattern`` picks jane.doe12 / janedoe12 / j.doe12 / jane_doe12 / doe.jane12."""
    initial = pc.utf8_slice_codeunits(first, 0, 1)
    spelled = [
        _join(first, ".", last, number),
        _join(first, last, number),
        _join(initial, ".", last, number),
        _join(first, "_", last, number),
        _join(last, ".", first, number),
    ]
    n = len(first)
    local = pc.take(pa.concat_arrays(spelled), pa.array(pattern.astype(np.int64) * n + np.arange(n)))
    return _join(local, "@", domain)


def _email_variants(canonical: pa.Array) -> list[pa.Array]:
    capitalized = pc.utf8_capitalize(canonical)
    return [
        canonical,
        capitalized,
        pc.utf8_upper(canonical),
        _join(" ", canonical),
        _join(canonical, "  "),
        _join(" ", canonical, " "),
        _join(capitalized, " "),
    ]


def build_email_book(
    first_folded: pa.Array,
    last_folded: pa.Array,
    person_no: np.ndarray,
    country: np.ndarray,
    rng: np.random.Generator,
) -> EmailBook:
    """Current and previous (pre-change) addresses; the previous one is on another domain."""
    n = len(person_no)
    number = pc.cast(pa.array(person_no), pa.string())
    domains = pa.array([d for group in EMAIL_DOMAINS for d in group])
    per_country = len(EMAIL_DOMAINS[0])
    domain_choice = rng.integers(0, per_country, n)
    previous_choice = (domain_choice + rng.integers(1, per_country, n)) % per_country
    current = _email_addresses(
        first_folded, last_folded, number, rng.integers(0, LOCAL_PART_PATTERNS, n),
        pc.take(domains, pa.array(country * per_country + domain_choice)),
    )  # fmt: skip
    previous = _email_addresses(
        first_folded, last_folded, number, rng.integers(0, LOCAL_PART_PATTERNS, n),
        pc.take(domains, pa.array(country * per_country + previous_choice)),
    )  # fmt: skip
    parts = [*_email_variants(current), *_email_variants(previous), pa.array(JUNK_EMAILS)]
    return EmailBook(values=pa.concat_arrays(parts), people=n)


def country_spellings() -> pa.Array:
    """Entry ``country * 4 + k``: spelling k of that country (k = 0 is the ISO code)."""
    return pa.array([s for group in COUNTRY_SPELLINGS for s in group])


def email_variant(rng: np.random.Generator, n: int, case_share: float, pad_share: float) -> np.ndarray:
    """Pick an EMAIL_VARIANTS code per record: case and padding noise drawn independently."""
    cased = rng.random(n) < case_share
    padded = rng.random(n) < pad_share
    variant = np.zeros(n, dtype=np.int64)
    variant[cased] = np.asarray(EMAIL_CASE_VARIANTS)[rng.integers(0, len(EMAIL_CASE_VARIANTS), int(cased.sum()))]
    variant[padded] = np.asarray(EMAIL_PAD_VARIANTS)[rng.integers(0, len(EMAIL_PAD_VARIANTS), int(padded.sum()))]
    variant[cased & padded] = EMAIL_CASE_AND_PAD_VARIANT
    return variant


def phone_variant(rng: np.random.Generator, n: int, national_share: float, international_share: float) -> np.ndarray:
    """Pick a PHONE_VARIANTS code per record."""
    u = rng.random(n)
    variant = np.zeros(n, dtype=np.int64)
    national = u < national_share
    international = (u >= national_share) & (u < national_share + international_share)
    variant[national] = np.asarray(PHONE_NATIONAL_VARIANTS)[rng.integers(0, 2, int(national.sum()))]
    variant[international] = np.asarray(PHONE_INTERNATIONAL_VARIANTS)[rng.integers(0, 2, int(international.sum()))]
    return variant
