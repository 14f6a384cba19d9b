"""The template context built from a `CallReport`, and the one description of its variables.

`VARIABLES` is the reference of every name a template can use; the README's table is generated
from it (`reference_table`) and a test keeps the two equal, another that it matches what
`build_context` returns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from connector.payload import CallReport, Channel, TranscriptChunk, User
from connector.phone import is_anonymous, parse_sipgate
from connector.render.locales import LABELS, duration_text, language_code, whole_seconds, zone

__all__ = ["PIPELINE_VARIABLES", "VARIABLES", "Variable", "build_context", "reference_table"]


@dataclass(frozen=True)
class Variable:
    """A name templates can use (nested keys dotted: ``call.start``) and what it holds."""

    name: str
    meaning: str


#: The keys of ``remote`` and ``local`` (a party of the call).
_PARTY: Final[tuple[tuple[str, str], ...]] = (
    ("e164", "+4921163553400, or empty when anonymous or not a possible number."),
    ("digits", "E.164 without + (4921163553400), or empty."),
    ("national", "National format (0211 63553400), or empty."),
    ("international", "International format (+49 211 63553400), or empty."),
    (
        "display",
        "For people: national format for numbers of the default region, international for "
        "others, the raw value when it is no phone number, labels.anonymous when withheld.",
    ),
    ("raw", "The number exactly as sipgate sent it (may be empty or 'anonymous')."),
    ("anonymous", "True when the number was withheld."),
)

#: Every key `build_context` returns (without ``extra``), nested keys dotted, in reference order.
VARIABLES: Final[tuple[Variable, ...]] = (
    Variable("call", "The call itself (see the call.* keys)."),
    Variable("call.id", "sipgate's call id."),
    Variable("call.direction", "IN or OUT."),
    Variable(
        "call.direction_label",
        'Localised direction: "Inbound call" / "Eingehender Anruf", "Outbound call" / '
        '"Ausgehender Anruf".',
    ),
    Variable("call.start", "Start of the call, timezone-aware, in the configured timezone."),
    Variable(
        "call.end",
        "End of the call, timezone-aware, in the configured timezone (start + duration when "
        "sipgate sent no end time).",
    ),
    Variable("call.date", "Local date of the start (a date)."),
    Variable("call.duration", "Duration as a timedelta."),
    Variable("call.duration_seconds", "Duration in whole seconds (rounded half up), an int."),
    Variable("call.duration_human", 'Localised duration: "1 min 23 s" / "1 Min. 23 Sek.".'),
    Variable("call.channel", "The sipgate channel {id, name}, or None."),
    Variable(
        "call.payload_version", '"1" (Conversation Intelligence webhook), "legacy" or "vcon".'
    ),
    Variable(
        "remote", "The customer's side: caller of an inbound call, callee of an outbound one."
    ),
    *(Variable(f"remote.{key}", meaning) for key, meaning in _PARTY),
    Variable("local", "Our side (the sipgate number), with the same keys as remote."),
    *(Variable(f"local.{key}", f"See remote.{key}.") for key, _ in _PARTY),
    Variable(
        "users",
        "The sipgate users on the call: list of {user_id, full_user_id, account_id, "
        "first_name, last_name, full_name}; may be empty.",
    ),
    Variable("user", "The first of users, or None."),
    Variable("headline", 'The AI headline ("" when missing).'),
    Variable("summary", 'The AI summary ("" when missing).'),
    Variable("key_points", "The summary's key points, a list of strings."),
    Variable("topics", "The summary's topics, a list of strings."),
    Variable("action_items", "The AI action items, a list of strings."),
    Variable("small_talk", "Small-talk passages, a list of {topic, description}."),
    Variable(
        "transcript",
        'The transcript text (built as "SPEAKER: text" lines from the chunks when sipgate sent '
        'only chunks; "" when there is none).',
    ),
    Variable(
        "transcript_chunks",
        "The transcript's utterances: list of {speaker, start_ms, end_ms, content}.",
    ),
    Variable("scenarios", "sipgate's call scenarios, a list of dicts as sent."),
    Variable("language", "The language of the labels: en or de."),
    Variable("timezone", "The configured timezone name, e.g. Europe/Berlin."),
    Variable("default_region", "The region used for numbers without a country code, e.g. DE."),
    Variable("labels", "Localised fixed strings for templates (see the labels.* keys)."),
    *(
        Variable(f"labels.{key}", f'"{LABELS["en"][key]}" / "{LABELS["de"][key]}".')
        for key in LABELS["en"]
    ),
)

#: The names the delivery pipeline adds through `build_context`'s ``extra`` when it renders.
PIPELINE_VARIABLES: Final[tuple[Variable, ...]] = (
    Variable("record", "The first matched CRM record `{id, type, name}`, or None."),
    Variable("item", "In task templates: the action item's text."),
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def reference_table() -> str:
    """The Markdown table of `VARIABLES` and `PIPELINE_VARIABLES` (the README shows it)."""
    rows = [
        f"| `{variable.name}` | {_cell(variable.meaning)} |"
        for variable in (*VARIABLES, *PIPELINE_VARIABLES)
    ]
    return "\n".join(["| name | meaning |", "| --- | --- |", *rows]) + "\n"


def _party(raw: str, default_region: str, labels: Mapping[str, str]) -> dict[str, Any]:
    number = parse_sipgate(raw)
    anonymous = is_anonymous(raw)
    if number is not None:
        display = number.national() if number.region == default_region else number.international()
    elif anonymous:
        display = labels["anonymous"]
    else:
        display = raw.strip()
    return {
        "e164": number.e164 if number else "",
        "digits": number.digits() if number else "",
        "national": number.national() if number else "",
        "international": number.international() if number else "",
        "display": display,
        "raw": raw,
        "anonymous": anonymous,
    }


def _user(user: User) -> dict[str, str]:
    return {
        "user_id": user.user_id,
        "full_user_id": user.full_user_id,
        "account_id": user.account_id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "full_name": user.full_name,
    }


def _chunk(chunk: TranscriptChunk) -> dict[str, Any]:
    return {
        "speaker": chunk.speaker,
        "start_ms": chunk.start_ms,
        "end_ms": chunk.end_ms,
        "content": chunk.content,
    }


def _transcript(report: CallReport) -> str:
    if report.transcript:
        return report.transcript
    return "\n".join(
        f"{chunk.speaker}: {chunk.content}" if chunk.speaker else chunk.content
        for chunk in report.transcript_chunks
        if chunk.content
    )


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def build_context(
    report: CallReport,
    *,
    timezone: str = "Europe/Berlin",
    language: str = "en",
    default_region: str = "DE",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The template context for `report`; `VARIABLES` describes every key.

    Times are converted to `timezone` (an IANA name), labels and durations use `language`
    (``en``, ``de``; ``de-DE`` counts as ``de``), `default_region` decides which numbers are
    shown in national format. `extra` is merged in at the top level. Raises ValueError for an
    unknown timezone or language and for `extra` keys that would replace a built-in key.
    """
    local_zone = zone(timezone)
    lang = language_code(language)
    region = default_region.strip().upper()
    labels = dict(LABELS[lang])
    start_utc = _aware(report.start_time)
    end_utc = _aware(report.end_time) if report.end_time else start_utc + report.duration
    start = start_utc.astimezone(local_zone)
    channel: Channel | None = report.channel
    users = [_user(u) for u in report.users]
    context: dict[str, Any] = {
        "call": {
            "id": report.call_id,
            "direction": report.direction,
            "direction_label": labels["inbound" if report.direction == "IN" else "outbound"],
            "start": start,
            "end": end_utc.astimezone(local_zone),
            "date": start.date(),
            "duration": report.duration,
            "duration_seconds": whole_seconds(report.duration),
            "duration_human": duration_text(report.duration, lang),
            "channel": {"id": channel.id, "name": channel.name} if channel else None,
            "payload_version": report.payload_version,
        },
        "remote": _party(report.remote_number, region, labels),
        "local": _party(report.local_number, region, labels),
        "users": users,
        "user": users[0] if users else None,
        "headline": report.headline,
        "summary": report.summary,
        "key_points": list(report.key_points),
        "topics": list(report.topics),
        "action_items": [item.content for item in report.action_items],
        "small_talk": [
            {"topic": item.topic, "description": item.description} for item in report.small_talk
        ],
        "transcript": _transcript(report),
        "transcript_chunks": [_chunk(chunk) for chunk in report.transcript_chunks],
        "scenarios": [dict(scenario) for scenario in report.scenarios],
        "language": lang,
        "timezone": timezone,
        "default_region": region,
        "labels": labels,
    }
    if extra:
        clashes = sorted(set(extra) & set(context))
        if clashes:
            raise ValueError(f"extra context keys would replace built-in keys: {clashes}")
        context.update(extra)
    return context
