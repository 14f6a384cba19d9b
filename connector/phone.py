"""Phone numbers: parse sipgate's and CRM users' numbers, compare them, and build search variants.

sipgate reports numbers as E.164 digits without ``+`` (``4921163553400``; older payloads with
``+``). CRM users type numbers in every format imaginable (``0211 63553400``,
``+49 (211) 635534-00``, ``0049 211 63553400``). This module turns both into one `PhoneNumber`
(built on Google's libphonenumber port, ``phonenumbers``) so that

* a CRM text search can be fed every format the number may be stored in (`PhoneNumber.variants`),
* every CRM hit can be re-checked locally (`same_number`): two numbers are the same only when their
  E.164 forms are equal, so a number of another country with the same national significant number
  never matches,
* calls that should not be logged are recognised (`is_anonymous`, `is_internal`).

Decisions:

* Extensions (``ext. 12``, ``x12``, ``#12``, ``;ext=12``) are dropped: the number is compared and
  formatted without them. A German "Durchwahl" written with a hyphen (``635534-00``) is not an
  extension but part of the number, and is kept.
* "Invalid" means not parseable, or not possible by length for its country (phonenumbers'
  ``is_possible_number_with_reason`` must say ``IS_POSSIBLE``; "possible only as a local number"
  is refused). A possible number outside the ranges phonenumbers' metadata knows is accepted: new
  ranges appear before the metadata is updated, and comparing E.164 strings needs no metadata.
  Matching stays exact because `same_number` compares complete E.164 forms.
* A number without trunk prefix (``211 63553400``) is read as a national number of the default
  region, so it matches ``+49 211 63553400`` when the default region is ``DE``.
* No function here raises for bad input; they answer ``None`` or ``False``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

__all__ = [
    "PhoneNumber",
    "is_anonymous",
    "is_internal",
    "parse_sipgate",
    "parse_stored",
    "same_number",
]

#: Values sipgate (and sloppy exports) use for "no number / number withheld", compared lower-case.
_ANONYMOUS_WORDS = frozenset(
    {
        "",
        "+",
        "anonymous",
        "anonym",
        "unknown",
        "unbekannt",
        "private",
        "restricted",
        "withheld",
        "unavailable",
        "none",
        "null",
    }
)

#: Longer inputs are not phone numbers (phonenumbers itself refuses more than 250 characters).
_MAX_INPUT_LENGTH = 250

#: Regions phonenumbers uses for "no single region" (non-geographic numbers, unknown).
_NO_REGION = frozenset({"001", "ZZ"})


@dataclass(frozen=True)
class PhoneNumber:
    """A parsed, possible phone number, without extension.

    Equality is equality of the E.164 form (all fields derive from it).
    """

    e164: str  # "+4921163553400"
    national_significant: str  # "21163553400": no country code, no trunk prefix
    country_code: int  # 49
    region: str | None  # "DE"; None for non-geographic numbers

    def national(self) -> str:
        """The number in phonenumbers' NATIONAL format, e.g. ``0211 63553400``."""
        return phonenumbers.format_number(_numobj(self.e164), PhoneNumberFormat.NATIONAL)

    def international(self) -> str:
        """The number in phonenumbers' INTERNATIONAL format, e.g. ``+49 211 63553400``."""
        return phonenumbers.format_number(_numobj(self.e164), PhoneNumberFormat.INTERNATIONAL)

    def digits(self) -> str:
        """The E.164 form without ``+`` (sipgate's format), e.g. ``4921163553400``."""
        return self.e164[1:]

    def variants(self) -> tuple[str, ...]:
        """Distinct spellings a CRM text search needs, most specific first.

        In this order, duplicates removed: ``+4921163553400`` (E.164), ``4921163553400`` (E.164
        digits), ``004921163553400`` (``00`` international prefix), ``021163553400`` (national
        digits with trunk prefix), ``21163553400`` (national significant number),
        ``0211 63553400`` (NATIONAL format), ``+49 211 63553400`` (INTERNATIONAL format).
        Where a country has no trunk prefix the national digits equal the NSN and appear once.
        """
        national = self.national()
        candidates = (
            self.e164,
            self.digits(),
            "00" + self.digits(),
            "".join(ch for ch in national if ch.isdigit()),
            self.national_significant,
            national,
            self.international(),
        )
        return tuple(dict.fromkeys(c for c in candidates if c))


@functools.lru_cache(maxsize=4096)
def _numobj(e164: str) -> phonenumbers.PhoneNumber:
    """The phonenumbers object for an E.164 string this module produced."""
    return phonenumbers.parse(e164, None)


def _from_numobj(number: phonenumbers.PhoneNumber) -> PhoneNumber | None:
    """Our `PhoneNumber` for a parsed number, or None when it is impossible. Drops extensions."""
    if number.country_code is None or number.national_number is None:
        return None
    try:
        # IS_POSSIBLE_LOCAL_ONLY ("63553400" without area code in some regions) is no full number.
        reason = phonenumbers.is_possible_number_with_reason(number)
        if reason != phonenumbers.ValidationResult.IS_POSSIBLE:
            return None
        clean = phonenumbers.PhoneNumber(
            country_code=number.country_code,
            national_number=number.national_number,
            italian_leading_zero=number.italian_leading_zero,
            number_of_leading_zeros=number.number_of_leading_zeros,
        )
        e164 = phonenumbers.format_number(clean, PhoneNumberFormat.E164)
        region: str | None = phonenumbers.region_code_for_number(clean)
        if region is None or region in _NO_REGION:
            main = phonenumbers.region_code_for_country_code(number.country_code)
            # Only a country code that belongs to exactly one region names the region safely.
            regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(number.country_code, ())
            region = main if len(regions) == 1 and main not in _NO_REGION else None
        return PhoneNumber(
            e164=e164,
            national_significant=phonenumbers.national_significant_number(clean),
            country_code=number.country_code,
            region=region,
        )
    except (NumberParseException, ValueError, TypeError, IndexError):  # pragma: no cover
        return None


def _parse(text: str, region: str | None) -> PhoneNumber | None:
    try:
        return _from_numobj(phonenumbers.parse(text, region))
    except (NumberParseException, ValueError, TypeError, IndexError):
        return None


def is_anonymous(raw: str | None) -> bool:
    """True when `raw` carries no number at all: a withheld or missing caller ID.

    ``None``, empty or blank, ``+``, only zeros (``0``, ``000``, ``+0``) and words such as
    ``anonymous``, ``unknown``, ``private``, ``restricted`` (any case) are anonymous. A garbled
    value that is not one of these is *not* anonymous (but `parse_sipgate` rejects it).
    """
    value: object = raw  # callers outside the type checker may pass anything
    if value is None:
        return True
    if not isinstance(value, str):
        return False
    text = value.strip().lower()
    if text in _ANONYMOUS_WORDS:
        return True
    digits = text.removeprefix("+")
    return bool(digits) and set(digits) == {"0"}


def _ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def parse_sipgate(raw: str | None) -> PhoneNumber | None:
    """Parse a number as sipgate sends it: E.164 digits with or without a leading ``+``.

    Returns None for anonymous values (`is_anonymous`), anything but ASCII digits after an
    optional ``+`` (surrounding whitespace is ignored; ``00`` before the country code is
    tolerated), internal direct dials of 5 digits or fewer, national numbers (a leading single
    ``0``: no country is known) and numbers phonenumbers deems impossible. Never raises.
    """
    if not isinstance(raw, str) or is_anonymous(raw) or len(raw) > _MAX_INPUT_LENGTH:
        return None
    text = raw.strip()
    plus = text.startswith("+")
    digits = text[1:] if plus else text
    if not _ascii_digits(digits) or len(digits) <= 5:
        return None
    if not plus and digits.startswith("00"):
        digits = digits[2:]
    if digits.startswith("0"):
        return None
    return _parse("+" + digits, None)


def _region(default_region: str) -> str | None:
    region = default_region.strip().upper() if isinstance(default_region, str) else ""
    return region if region in phonenumbers.SUPPORTED_REGIONS else None


def parse_stored(raw: str | None, default_region: str) -> PhoneNumber | None:
    """Parse a number as a human typed it into a CRM.

    Accepts the usual spellings (``0211 63553400``, ``(0211) 635 534 00``, ``0211/63553400``,
    ``+49 (211) 635534-00``, ``+49 (0)211 63553400``, ``0049 211 63553400``, ``tel:`` URIs).
    Numbers without a country code are read as numbers of `default_region` (ISO 3166 code such
    as ``DE``, any case). Extensions (``ext. 12``, ``x12``, ``#12``) are dropped. Returns None for
    empty/anonymous values, text that is not a phone number, numbers impossible for their country
    and national numbers when `default_region` is unknown. Never raises.
    """
    if not isinstance(raw, str) or is_anonymous(raw) or len(raw) > _MAX_INPUT_LENGTH:
        return None
    return _parse(raw.strip(), _region(default_region))


@functools.lru_cache(maxsize=1024)
def _parse_flexible(raw: str, default_region: str) -> PhoneNumber | None:
    """A number from sipgate (digits, no leading 0) or typed by a human (anything else)."""
    text = raw.strip()
    digits = text.removeprefix("+")
    if _ascii_digits(digits) and not digits.startswith("0"):
        return parse_sipgate(text)
    return parse_stored(text, default_region)


def same_number(stored: str | None, caller: PhoneNumber | None, default_region: str) -> bool:
    """True when the CRM value `stored` is the caller's number.

    `stored` is parsed with `parse_stored` (national spellings read as `default_region`) and must
    have exactly the caller's E.164 form. A number of another country with the same national
    significant number never matches; an unparseable `stored` never matches. Never raises.
    """
    if caller is None:
        return False
    parsed = parse_stored(stored, default_region)
    return parsed is not None and parsed.e164 == caller.e164


def is_internal(
    raw: str | None,
    own_numbers: Iterable[str] = (),
    max_internal_digits: int = 5,
    default_region: str = "DE",
) -> bool:
    """True when `raw` is one of our own numbers rather than a customer's.

    That is the case when `raw` is a direct dial (only digits, at most `max_internal_digits` of
    them, after an optional ``+``) or, once normalised, has the E.164 form of one of
    `own_numbers`. Both `raw` and `own_numbers` may be sipgate digits (``4921163553401``, read as
    E.164 because they carry no leading ``0``) or any human spelling; spellings without a country
    code are read as numbers of `default_region`. Anonymous or unparseable values are not internal.
    Never raises.
    """
    if not isinstance(raw, str) or is_anonymous(raw):
        return False
    text = raw.strip()
    digits = text.removeprefix("+")
    if _ascii_digits(digits) and len(digits) <= max_internal_digits:
        return True
    if isinstance(own_numbers, str):  # a single number passed by mistake
        own_numbers = (own_numbers,)
    if len(text) > _MAX_INPUT_LENGTH:
        return False
    number = _parse_flexible(text, default_region)
    if number is None:
        return False
    for own in own_numbers:
        if not isinstance(own, str) or len(own) > _MAX_INPUT_LENGTH:
            continue
        other = _parse_flexible(own, default_region)
        if other is not None and other.e164 == number.e164:
            return True
    return False
