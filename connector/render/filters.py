"""Template filters beyond Jinja2's own and the text helpers: dates, durations, phone numbers.

Each reads what it needs from the template context (``timezone``, ``language``,
``default_region``), so a template writes ``{{ call.start | datetime }}`` and gets local time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import jinja2
from jinja2.runtime import Context

from connector.phone import PhoneNumber, parse_sipgate, parse_stored
from connector.render.locales import duration_text, zone

__all__ = ["date_filter", "datetime_filter", "duration_human", "e164_filter", "national_filter"]


def _as_datetime(value: Any) -> dt.date:
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    raise TypeError(f"expected a date or datetime, not {type(value).__name__}")


def _localise(context: Context, value: dt.date) -> dt.date:
    """An aware datetime moved to the context's timezone; anything else unchanged."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        name = context.get("timezone")
        if isinstance(name, str):
            return value.astimezone(zone(name))
    return value


@jinja2.pass_context
def date_filter(context: Context, value: Any, fmt: str = "%Y-%m-%d") -> str:
    """Filter ``date``: a date or datetime (or ISO-8601 string) formatted with ``strftime(fmt)``.

    Aware datetimes are shown in the configured timezone first. None gives "".
    """
    if value is None:
        return ""
    return _localise(context, _as_datetime(value)).strftime(fmt)


@jinja2.pass_context
def datetime_filter(context: Context, value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Filter ``datetime``: like ``date`` with the default format ``%Y-%m-%d %H:%M``."""
    if value is None:
        return ""
    return _localise(context, _as_datetime(value)).strftime(fmt)


@jinja2.pass_context
def duration_human(context: Context, value: Any, language: str | None = None) -> str:
    """Filter ``duration_human``: a timedelta (or seconds) as "1 h 2 min 3 s" / "1 Std. 2 Min.
    3 Sek.", in `language` or else the context's language; zero parts are left out, zero is
    "0 s"; seconds are rounded half up. None gives ""."""
    return duration_text(value, language or str(context.get("language") or "en"))


def _parse_number(value: Any, default_region: str) -> PhoneNumber | None:
    if isinstance(value, PhoneNumber):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    digits = text.removeprefix("+")
    if digits.isascii() and digits.isdigit() and not digits.startswith("0"):
        return parse_sipgate(text)  # sipgate's E.164 digits
    return parse_stored(text, default_region)


@jinja2.pass_context
def e164_filter(context: Context, value: Any) -> str:
    """Filter ``e164``: a raw number as ``+4921163553400``; unparseable input is returned as is."""
    number = _parse_number(value, str(context.get("default_region") or "DE"))
    if number is not None:
        return number.e164
    return "" if value is None else str(value)


@jinja2.pass_context
def national_filter(context: Context, value: Any) -> str:
    """Filter ``national``: a raw number as ``0211 63553400``; unparseable input returned as is."""
    number = _parse_number(value, str(context.get("default_region") or "DE"))
    if number is not None:
        return number.national()
    return "" if value is None else str(value)
