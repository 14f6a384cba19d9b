"""The languages of the template context: labels, duration words, time zones."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["LABELS", "LANGUAGES", "duration_text", "language_code", "whole_seconds", "zone"]

LANGUAGES: Final = ("en", "de")

#: Localised fixed strings per language (the template context's ``labels``).
LABELS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "headline": "Headline",
        "summary": "Summary",
        "key_points": "Key points",
        "topics": "Topics",
        "action_items": "Action items",
        "small_talk": "Small talk",
        "transcript": "Transcript",
        "call_from": "Call with",
        "inbound": "Inbound call",
        "outbound": "Outbound call",
        "duration": "Duration",
        "date": "Date",
        "time": "Time",
        "channel": "Channel",
        "user": "sipgate user",
        "anonymous": "Withheld number",
    },
    "de": {
        "headline": "Überschrift",
        "summary": "Zusammenfassung",
        "key_points": "Kernpunkte",
        "topics": "Themen",
        "action_items": "Aufgaben",
        "small_talk": "Small Talk",
        "transcript": "Transkript",
        "call_from": "Anruf mit",
        "inbound": "Eingehender Anruf",
        "outbound": "Ausgehender Anruf",
        "duration": "Dauer",
        "date": "Datum",
        "time": "Uhrzeit",
        "channel": "Kanal",
        "user": "sipgate-Benutzer",
        "anonymous": "Unterdrückte Nummer",
    },
}

#: (hours, minutes, seconds) unit words per language.
_DURATION_UNITS: Final[dict[str, tuple[str, str, str]]] = {
    "en": ("h", "min", "s"),
    "de": ("Std.", "Min.", "Sek."),
}


def language_code(language: str) -> str:
    """The supported language `language` names (``de-DE`` and ``de_DE`` count as ``de``).

    Raises ValueError for a language without labels.
    """
    code = language.strip().replace("_", "-").split("-")[0].lower() if language else ""
    if code not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}; supported: {', '.join(LANGUAGES)}")
    return code


def whole_seconds(value: dt.timedelta) -> int:
    """Seconds of `value`, rounded half up (82.5 s → 83 s)."""
    return int((value + dt.timedelta(milliseconds=500)) // dt.timedelta(seconds=1))


def duration_text(value: Any, language: str) -> str:
    """A timedelta (or seconds) as "1 h 2 min 3 s" / "1 Std. 2 Min. 3 Sek." in `language`.

    Zero parts are left out, zero is "0 s", seconds are rounded half up; None gives "".
    Raises TypeError for other values.
    """
    if value is None:
        return ""
    if isinstance(value, dt.timedelta):
        seconds = whole_seconds(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = whole_seconds(dt.timedelta(seconds=value))
    else:
        raise TypeError(
            f"duration_human expects a timedelta or seconds, not {type(value).__name__}"
        )
    hour_unit, minute_unit, second_unit = _DURATION_UNITS[language_code(language)]
    sign = "-" if seconds < 0 else ""
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    if hours:
        parts.append(f"{hours} {hour_unit}")
    if minutes:
        parts.append(f"{minutes} {minute_unit}")
    if secs or not parts:
        parts.append(f"{secs} {second_unit}")
    return sign + " ".join(parts)


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`; raises ValueError for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"unknown timezone {name!r}") from exc
