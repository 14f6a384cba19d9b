"""Tests for connector.phone: parsing sipgate and CRM numbers, comparing them, variants."""

from __future__ import annotations

import random

import pytest

from connector.phone import (
    PhoneNumber,
    is_anonymous,
    is_internal,
    parse_sipgate,
    parse_stored,
    same_number,
)

CALLER_DIGITS = "4921163553400"


@pytest.fixture
def caller() -> PhoneNumber:
    number = parse_sipgate(CALLER_DIGITS)
    assert number is not None
    return number


def test_parse_sipgate_fields(caller: PhoneNumber) -> None:
    assert caller == PhoneNumber(
        e164="+4921163553400",
        national_significant="21163553400",
        country_code=49,
        region="DE",
    )
    assert caller.national() == "0211 63553400"
    assert caller.international() == "+49 211 63553400"
    assert caller.digits() == "4921163553400"


def test_parse_sipgate_accepts_plus_and_whitespace(caller: PhoneNumber) -> None:
    assert parse_sipgate("+4921163553400") == caller
    assert parse_sipgate(" 4921163553400\n") == caller
    assert parse_sipgate("004921163553400") == caller


def test_legacy_mobile_number() -> None:
    number = parse_sipgate("+491751234567")
    assert number is not None
    assert number.e164 == "+491751234567"
    assert number.national_significant == "1751234567"
    assert number.national() == "0175 1234567"
    assert same_number("0175 1234567", number, "DE")
    assert same_number("+49 (175) 123 45 67", number, "DE")
    assert not same_number("0175 1234568", number, "DE")


def test_variants(caller: PhoneNumber) -> None:
    assert caller.variants() == (
        "+4921163553400",
        "4921163553400",
        "004921163553400",
        "021163553400",
        "21163553400",
        "0211 63553400",
        "+49 211 63553400",
    )


def test_variants_are_distinct_without_trunk_prefix() -> None:
    number = parse_sipgate("12015550123")  # NANP: no trunk prefix in the national format
    assert number is not None
    variants = number.variants()
    assert len(variants) == len(set(variants))
    assert variants[:3] == ("+12015550123", "12015550123", "0012015550123")
    assert "2015550123" in variants
    assert "(201) 555-0123" in variants


@pytest.mark.parametrize(
    "stored",
    [
        "0211 63553400",
        "+49 (211) 635534-00",
        "0049 211 63553400",
        "+49 211 63553400",
        "0211/63553400",
        "+49211 635 534 00",
        "(0211) 635 534 00",
        "+49 (0)211 63553400",
        "+49 0211 63553400",
        "211 63553400",  # the NSN without trunk 0, read in the default region
        "021163553400",
        "+4921163553400",
        "tel:+49-211-63553400",
        "  0211 63553400  ",
    ],
)
def test_same_number_formats(stored: str, caller: PhoneNumber) -> None:
    assert same_number(stored, caller, "DE")


@pytest.mark.parametrize(
    "stored",
    ["+49 211 63553400 ext. 12", "+49 211 63553400 x12", "0211 63553400 #12"],
)
def test_extensions_are_dropped(stored: str, caller: PhoneNumber) -> None:
    parsed = parse_stored(stored, "DE")
    assert parsed == caller
    assert "ext" not in parsed.national()
    assert same_number(stored, caller, "DE")


@pytest.mark.parametrize(
    ("stored", "region"),
    [
        ("+43 211 63553400", "DE"),  # same NSN, other country
        ("021163553400", "AT"),  # national format read as Austrian
        ("0211 63553400", "CH"),
        ("+1 211 635 5340", "DE"),
        ("0211 63553401", "DE"),  # other number
        ("0211 6355340", "DE"),
        ("63553400", "DE"),  # without area code
        ("21163553400", "AT"),  # a bare NSN is a national number of the default region
    ],
)
def test_other_country_or_number_never_matches(
    stored: str, region: str, caller: PhoneNumber
) -> None:
    assert not same_number(stored, caller, region)


def test_same_nsn_other_country_differs_but_shares_nsn(caller: PhoneNumber) -> None:
    austrian = parse_stored("+43 211 63553400", "DE")
    assert austrian is not None
    assert austrian.national_significant == caller.national_significant
    assert austrian.e164 != caller.e164


def test_default_region_is_case_insensitive(caller: PhoneNumber) -> None:
    assert same_number("0211 63553400", caller, "de")


def test_unknown_default_region_only_accepts_international(caller: PhoneNumber) -> None:
    assert parse_stored("0211 63553400", "XX") is None
    assert same_number("+49 211 63553400", caller, "XX")


@pytest.mark.parametrize(
    "raw", [None, "", "   ", "anonymous", "ANONYMOUS", "unknown", "+", "0", "000", "+0"]
)
def test_anonymous(raw: str | None) -> None:
    assert is_anonymous(raw)
    assert parse_sipgate(raw) is None
    assert parse_stored(raw, "DE") is None
    assert not is_internal(raw)


@pytest.mark.parametrize("raw", ["4921163553400", "12", "abc", "+49 211 63553400"])
def test_not_anonymous(raw: str) -> None:
    assert not is_anonymous(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "1",
        "12",
        "123",
        "12345",
        "+12345",
        "49211abc53400",
        "+49 211 63553400",  # sipgate sends no separators
        "021163553400",  # national, no country known
        "4999",
        "49123",
        "999999999999999999",  # too long for E.164
        "4912",
        "\u0664\u0669\u0662\u0661\u0661\u0666\u0663\u0665\u0665\u0663\u0664",  # Arabic-Indic
    ],
)
def test_parse_sipgate_rejects(raw: str) -> None:
    assert parse_sipgate(raw) is None


@pytest.mark.parametrize("raw", ["1234567", "+1234567", "44123456"])
def test_parse_sipgate_rejects_impossible_number(raw: str) -> None:
    # +1 234567 is too short; +44 123456 is at most a local number without area code
    assert parse_sipgate(raw) is None


@pytest.mark.parametrize(
    "raw", ["hello", "0", "++49", "(((", "ext. 12", "12", "x" * 1000, "0211 63553400" * 30]
)
def test_parse_stored_rejects(raw: str) -> None:
    assert parse_stored(raw, "DE") is None


@pytest.mark.parametrize("raw", ["1", "12", "123", "1234", "12345", "+12345", " 42 "])
def test_short_numbers_are_internal(raw: str) -> None:
    assert is_internal(raw)


def test_six_digits_are_not_internal_by_default() -> None:
    assert not is_internal("123456")
    assert is_internal("123456", max_internal_digits=6)


def test_own_numbers_are_internal() -> None:
    own = ["0211 63553401", "+49 211 635534-02", "4921163553403"]
    assert is_internal("4921163553401", own)
    assert is_internal("+4921163553402", own)
    assert is_internal("4921163553403", own)
    assert is_internal("0211 63553403", own)
    assert not is_internal(CALLER_DIGITS, own)
    assert not is_internal(CALLER_DIGITS)


def test_own_numbers_use_default_region() -> None:
    assert not is_internal("4921163553401", ["021163553401"], default_region="AT")
    assert is_internal("4321163553401", ["021163553401"], default_region="AT")


def test_own_numbers_single_string_is_one_number() -> None:
    assert is_internal("4921163553401", "0211 63553401")


def test_own_numbers_garbage_is_ignored() -> None:
    assert not is_internal(CALLER_DIGITS, ["", "anonymous", "n/a", "x" * 500])


def test_same_number_with_nothing() -> None:
    caller = parse_sipgate(CALLER_DIGITS)
    assert caller is not None
    assert not same_number(None, caller, "DE")
    assert not same_number("", caller, "DE")
    assert not same_number("anonymous", caller, "DE")
    assert not same_number("0211 63553400", None, "DE")


def test_invalid_input_never_raises() -> None:
    caller = parse_sipgate(CALLER_DIGITS)
    assert caller is not None
    rng = random.Random(20260408)
    alphabet = "0123456789+-()/ .#xext;=:tel\u00a0\u200b\u0661\u0662ä😀\ud800"
    samples = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(500)]
    samples += ["+" * 300, "0" * 300, "9" * 300, "\x00", "+\x00", "tel:", ";ext="]
    for raw in samples:
        parse_sipgate(raw)
        parse_stored(raw, "DE")
        parse_stored(raw, "not-a-region")
        same_number(raw, caller, "DE")
        is_internal(raw, [raw, "0211 63553401"])
        is_anonymous(raw)


def test_non_string_input_is_tolerated() -> None:
    odd: object = 4921163553400
    assert parse_sipgate(odd) is None  # type: ignore[arg-type]
    assert parse_stored(odd, "DE") is None  # type: ignore[arg-type]
    assert not is_anonymous(odd)  # type: ignore[arg-type]
    assert not is_internal(odd)  # type: ignore[arg-type]


def test_phone_number_is_hashable_and_comparable(caller: PhoneNumber) -> None:
    assert {caller, parse_sipgate("+4921163553400")} == {caller}
