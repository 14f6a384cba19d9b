"""Validate sipgate webhook payloads and turn every accepted shape into one `CallReport`.

Two shapes exist:

* the Conversation Intelligence webhook, ``"version": "1"`` (numbers as E.164 digits without
  ``+``, ISO-8601 UTC times, ``duration`` in milliseconds, ``direction`` ``IN``/``OUT``);
* the older "AI Assistant" webhook, no ``version`` (``call.caller``/``call.callee`` with ``+``,
  epoch-millisecond times, ``duration`` in seconds, lower-case ``direction``, ``callHeadline`` a
  plain string and ``channel`` at the top level).

The schemas ignore fields they do not know (sipgate adds fields over time) and tolerate missing or
``null`` AI parts. Everything after this module works with `CallReport` only.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

__all__ = [
    "ActionItem",
    "CallReport",
    "Channel",
    "NotJson",
    "PayloadError",
    "SmallTalkItem",
    "TranscriptChunk",
    "UnsupportedVersion",
    "User",
    "decode_json",
    "find_bad_text",
    "parse_body",
    "parse_report",
    "report_from_json",
]

SUPPORTED_VERSIONS = ("1",)

#: Calls happen now; these bounds keep dates and durations inside what every layer can handle.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
MAX_DURATION_MS = 7 * 24 * 3600 * 1000
# Identifiers and numbers reach log lines and fixed-width columns (ledger, database target): no
# control characters (a newline would forge a log line), and no more than the columns hold.
_CONTROL = "\x00-\x1f\x7f-\x9f\u2028\u2029"
_CALL_ID = validate.Regexp(
    f"^[^{_CONTROL}]{{1,255}}\\Z", error="Must be 1 to 255 printable characters."
)
_NUMBER = validate.Regexp(
    f"^[^{_CONTROL}]{{0,64}}\\Z", error="Must be at most 64 printable characters."
)
_WHEN = validate.Range(min=EARLIEST, max=LATEST, error="Must be between 2000 and 2100.")


def _text(limit: int | None = None, **kwargs: Any) -> fields.String:
    """An optional text field (missing or null → empty), at most `limit` characters."""
    bound = [validate.Length(max=limit)] if limit else []
    return fields.String(
        load_default=kwargs.pop("load_default", ""), allow_none=True, validate=bound, **kwargs
    )


def _phone(**kwargs: Any) -> fields.String:
    # Empty or "anonymous" numbers are legal: a withheld caller ID.
    return fields.String(load_default="", allow_none=True, validate=_NUMBER, **kwargs)


class PayloadError(ValueError):
    """The body is not a call report we understand.

    `messages` maps field paths (``call.startTime``) to error messages.
    """

    def __init__(self, messages: dict[str, list[str]]) -> None:
        super().__init__("invalid call report")
        self.messages = messages


class NotJson(PayloadError):
    """The body is not JSON text in UTF-8 (RFC 8259), so no field of it can be named."""

    def __init__(self, message: str) -> None:
        super().__init__({"_body": [message]})
        self.message = message


class UnsupportedVersion(PayloadError):
    """The payload names a `version` this release does not know."""


@dataclass(frozen=True)
class User:
    """A sipgate user who took part in the call."""

    user_id: str
    full_user_id: str
    account_id: str
    first_name: str
    last_name: str
    full_name: str


@dataclass(frozen=True)
class Channel:
    """The shared sipgate channel the call came in on."""

    id: str
    name: str


@dataclass(frozen=True)
class TranscriptChunk:
    """One utterance of the transcript; times are milliseconds from the start of the call."""

    speaker: str
    start_ms: int | None
    end_ms: int | None
    content: str


@dataclass(frozen=True)
class ActionItem:
    """A follow-up the AI found in the conversation."""

    content: str


@dataclass(frozen=True)
class SmallTalkItem:
    """A small-talk passage the AI recognised."""

    topic: str
    description: str


@dataclass(frozen=True)
class CallReport:
    """One call as sipgate reported it, independent of the payload shape it arrived in.

    Phone numbers are kept exactly as sipgate sent them (``from_number``/``to_number``), without
    ``+``; they may be empty or ``anonymous``. Times are timezone-aware UTC.
    """

    call_id: str
    payload_version: str
    from_number: str
    to_number: str
    start_time: datetime
    end_time: datetime | None
    duration: timedelta
    direction: str  # "IN" or "OUT"
    users: tuple[User, ...] = ()
    channel: Channel | None = None
    llm_provider: str | None = None
    headline: str = ""
    summary: str = ""
    key_points: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    action_items: tuple[ActionItem, ...] = ()
    small_talk: tuple[SmallTalkItem, ...] = ()
    transcript: str = ""
    transcript_chunks: tuple[TranscriptChunk, ...] = ()
    scenarios: tuple[Mapping[str, Any], ...] = field(default=())

    @property
    def remote_number(self) -> str:
        """The customer's side: the caller of an inbound call, the callee of an outbound one."""
        return self.from_number if self.direction == "IN" else self.to_number

    @property
    def local_number(self) -> str:
        """Our side of the call: the number on the sipgate account."""
        return self.to_number if self.direction == "IN" else self.from_number


# --- version "1" (Conversation Intelligence webhook) ---------------------------------------


class _Base(Schema):
    class Meta:
        unknown = EXCLUDE


class _UserSchema(_Base):
    userId = _text(64)
    accountId = _text(64)
    fullUserId = _text(128)
    firstName = _text(255)
    lastName = _text(255)
    fullName = _text(255)


class _ChannelSchema(_Base):
    id = fields.String(required=True, validate=validate.Length(max=255))
    name = _text(255)


class _CallV1Schema(_Base):
    id = fields.String(required=True, validate=_CALL_ID)
    from_ = _phone(data_key="from")
    to = _phone()
    startTime = fields.AwareDateTime(required=True, default_timezone=UTC, validate=_WHEN)
    endTime = fields.AwareDateTime(
        load_default=None, allow_none=True, default_timezone=UTC, validate=_WHEN
    )
    duration = fields.Integer(
        strict=True,
        load_default=0,
        allow_none=True,
        validate=validate.Range(min=0, max=MAX_DURATION_MS),
    )
    direction = fields.String(required=True, validate=validate.OneOf(["IN", "OUT"]))
    users = fields.List(fields.Nested(_UserSchema), load_default=list, allow_none=True)
    channel = fields.Nested(_ChannelSchema, load_default=None, allow_none=True)


class _ContentSchema(_Base):
    content = _text()


class _Chunks(fields.Field[list[dict[str, Any]]]):
    """Transcript chunks, validated in one pass.

    A long call has hundreds of chunks; a nested schema per chunk would cost milliseconds on the
    request path. Errors carry the same paths a nested schema would give
    (``assist.transcription.chunks.3.startTime``).
    """

    _TEXT = {"speaker": 32, "content": None}
    _TIMES = ("startTime", "endTime")

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> list[dict[str, Any]]:
        if not isinstance(value, list):
            raise ValidationError("Not a valid list.")
        errors: dict[int, dict[str, list[str]]] = {}
        out: list[dict[str, Any]] = []
        for index, chunk in enumerate(value):
            if not isinstance(chunk, dict):
                errors[index] = {"_schema": ["Invalid input type."]}
                continue
            problems: dict[str, list[str]] = {}
            for key, limit in self._TEXT.items():
                text = chunk.get(key, "")
                if not isinstance(text, str | None):
                    problems[key] = ["Not a valid string."]
                elif limit and text and len(text) > limit:
                    problems[key] = [f"Longer than maximum length {limit}."]
            for key in self._TIMES:
                item = chunk.get(key)
                if item is None:
                    continue
                if isinstance(item, bool) or not isinstance(item, int):
                    problems[key] = ["Not a valid integer."]
                elif not 0 <= item <= MAX_DURATION_MS:
                    problems[key] = ["Must be 0 to 7 days in milliseconds."]
            if problems:
                errors[index] = problems
            out.append({k: chunk.get(k) for k in (*self._TEXT, *self._TIMES)})
        if errors:
            raise ValidationError(errors)
        return out


class _TranscriptionSchema(_Base):
    content = _text()
    chunks = _Chunks(load_default=list, allow_none=True)


class _SummarySchema(_Base):
    content = _text()
    keyPoints = fields.List(fields.String(), load_default=list, allow_none=True)
    topics = fields.List(fields.String(), load_default=list, allow_none=True)


class _SmallTalkSchema(_Base):
    topic = _text()
    description = _text()


class _ProviderSchema(_Base):
    llm = _text(64, load_default=None)


class _AssistSchema(_Base):
    provider = fields.Nested(_ProviderSchema, load_default=None, allow_none=True)
    transcription = fields.Nested(_TranscriptionSchema, load_default=None, allow_none=True)
    callScenarios = fields.List(fields.Dict(), load_default=None, allow_none=True)
    callHeadline = fields.Nested(_ContentSchema, load_default=None, allow_none=True)
    summary = fields.Nested(_SummarySchema, load_default=None, allow_none=True)
    actionItems = fields.List(fields.Nested(_ContentSchema), load_default=None, allow_none=True)
    smallTalkItems = fields.List(
        fields.Nested(_SmallTalkSchema), load_default=None, allow_none=True
    )


class _ReportV1Schema(_Base):
    version = fields.String(required=True)
    call = fields.Nested(_CallV1Schema, required=True)
    assist = fields.Nested(_AssistSchema, load_default=None, allow_none=True)


# --- the older "AI Assistant" webhook -------------------------------------------------------


class _EpochMillis(fields.Field[datetime]):
    """Epoch milliseconds (an integer, or digits in a string) as an aware UTC datetime."""

    default_error_messages = {"invalid": "Not a valid epoch-millisecond timestamp."}

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> datetime:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self.make_error("invalid")
        try:
            return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
        except (ValueError, OverflowError, OSError, TypeError) as exc:
            raise self.make_error("invalid") from exc


class _CallLegacySchema(_Base):
    id = fields.String(required=True, validate=_CALL_ID)
    caller = _phone()
    callee = _phone()
    startTime = _EpochMillis(required=True, validate=_WHEN)
    endTime = _EpochMillis(load_default=None, allow_none=True, validate=_WHEN)
    duration = fields.Integer(
        strict=True,
        load_default=0,
        allow_none=True,
        validate=validate.Range(min=0, max=MAX_DURATION_MS // 1000),
    )
    direction = fields.String(
        required=True,
        validate=validate.OneOf(["inbound", "outbound", "INBOUND", "OUTBOUND", "IN", "OUT"]),
    )
    users = fields.List(fields.Nested(_UserSchema), load_default=list, allow_none=True)


class _TextOrContent(fields.Field[Any]):
    """Text, or an object with text in ``content`` (the v1 style some senders use)."""

    default_error_messages = {"invalid": "Must be a string or an object with a content string."}

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> Any:
        if isinstance(value, dict) and isinstance(value.get("content", ""), str | None):
            return value
        if isinstance(value, str):
            return value
        raise self.make_error("invalid")


class _ReportLegacySchema(_Base):
    callHeadline = _text()
    call = fields.Nested(_CallLegacySchema, required=True)
    channel = fields.Nested(_ChannelSchema, load_default=None, allow_none=True)
    # Not publicly documented for this shape; accepted when present.
    summary = _TextOrContent(load_default=None, allow_none=True)
    keyPoints = fields.List(fields.String(), load_default=None, allow_none=True)
    topics = fields.List(fields.String(), load_default=None, allow_none=True)
    actionItems = fields.List(_TextOrContent(), load_default=None, allow_none=True)
    transcript = _text(load_default=None)


# Schema instances are reusable and building them (with their nested schemas) is costly.
_V1_SCHEMA = _ReportV1Schema()
_LEGACY_SCHEMA = _ReportLegacySchema()


# --- conversion -----------------------------------------------------------------------------


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested error dict into ``{"call.startTime": ["..."]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            flat.update(_flatten(value, path))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        flat[prefix or "_schema"] = list(messages)
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def _digits_without_plus(number: str) -> str:
    number = number.strip()
    return number[1:] if number.startswith("+") else number


def _users(raw: list[dict[str, Any]] | None) -> tuple[User, ...]:
    return tuple(
        User(
            user_id=_s(u.get("userId")),
            full_user_id=_s(u.get("fullUserId")),
            account_id=_s(u.get("accountId")),
            first_name=_s(u.get("firstName")),
            last_name=_s(u.get("lastName")),
            full_name=_s(u.get("fullName")),
        )
        for u in raw or ()
    )


def _channel(raw: dict[str, Any] | None) -> Channel | None:
    return Channel(id=raw["id"], name=_s(raw.get("name"))) if raw else None


def _v1_report(data: dict[str, Any]) -> CallReport:
    call = data["call"]
    assist = data.get("assist") or {}
    transcription = assist.get("transcription") or {}
    summary = assist.get("summary") or {}
    headline = assist.get("callHeadline") or {}
    start: datetime = call["startTime"]
    end: datetime | None = call.get("endTime")
    duration_ms = call.get("duration")
    if duration_ms is None:
        duration_ms = max(0, (end - start) // timedelta(milliseconds=1)) if end else 0
    return CallReport(
        call_id=call["id"],
        payload_version=data["version"],
        from_number=_s(call.get("from_")),
        to_number=_s(call.get("to")),
        start_time=start.astimezone(UTC),
        end_time=end.astimezone(UTC) if end else None,
        duration=timedelta(milliseconds=duration_ms),
        direction=call["direction"],
        users=_users(call.get("users")),
        channel=_channel(call.get("channel")),
        llm_provider=(assist.get("provider") or {}).get("llm"),
        headline=_s(headline.get("content")),
        summary=_s(summary.get("content")),
        key_points=tuple(p for p in summary.get("keyPoints") or () if p),
        topics=tuple(t for t in summary.get("topics") or () if t),
        action_items=tuple(
            ActionItem(_s(a.get("content")))
            for a in assist.get("actionItems") or ()
            if a.get("content")
        ),
        small_talk=tuple(
            SmallTalkItem(_s(s.get("topic")), _s(s.get("description")))
            for s in assist.get("smallTalkItems") or ()
        ),
        transcript=_s(transcription.get("content")),
        transcript_chunks=tuple(
            TranscriptChunk(
                speaker=_s(c.get("speaker")),
                start_ms=c.get("startTime"),
                end_ms=c.get("endTime"),
                content=_s(c.get("content")),
            )
            for c in transcription.get("chunks") or ()
        ),
        scenarios=tuple(assist.get("callScenarios") or ()),
    )


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value if v] if isinstance(value, list) else []


def _legacy_text(value: Any) -> str:
    if isinstance(value, dict):
        return _s(value.get("content"))
    return _s(value)


def _legacy_report(data: dict[str, Any]) -> CallReport:
    call = data["call"]
    summary_raw = data.get("summary")
    key_points = data.get("keyPoints")
    topics = data.get("topics")
    if isinstance(summary_raw, dict):  # tolerate the v1-style nested summary
        key_points = key_points or _strings(summary_raw.get("keyPoints"))
        topics = topics or _strings(summary_raw.get("topics"))
    direction = call["direction"].upper()
    return CallReport(
        call_id=call["id"],
        payload_version="legacy",
        from_number=_digits_without_plus(_s(call.get("caller"))),
        to_number=_digits_without_plus(_s(call.get("callee"))),
        start_time=call["startTime"],
        end_time=call.get("endTime"),
        duration=timedelta(seconds=call.get("duration") or 0),
        direction="IN" if direction in ("INBOUND", "IN") else "OUT",
        users=_users(call.get("users")),
        channel=_channel(data.get("channel")),
        headline=_s(data.get("callHeadline")),
        summary=_legacy_text(summary_raw),
        key_points=tuple(str(p) for p in key_points or () if p),
        topics=tuple(str(t) for t in topics or () if t),
        action_items=tuple(
            ActionItem(_legacy_text(a)) for a in data.get("actionItems") or () if _legacy_text(a)
        ),
        transcript=_s(data.get("transcript")),
    )


def find_bad_text(document: Any, path: str = "") -> str | None:
    """The path of the first string holding NUL or an unpaired surrogate (no database stores
    those), or ``None``. Such text can only come from ``\\u`` escapes in the JSON."""
    if isinstance(document, str):
        if "\x00" in document or any("\ud800" <= ch <= "\udfff" for ch in document):
            return path or "_schema"
        return None
    if isinstance(document, dict):
        items: Any = document.items()
    elif isinstance(document, list):
        items = enumerate(document)
    else:
        return None
    for key, value in items:
        inner = f"{path}.{key}" if path else str(key)
        found = find_bad_text(key, inner) if isinstance(key, str) else None
        found = found or find_bad_text(value, inner)
        if found:
            return found
    return None


def parse_report(document: Any, *, check_text: bool = True) -> CallReport:
    """Validate a decoded JSON document and return its `CallReport`.

    Raises `UnsupportedVersion` for a ``version`` we do not know and `PayloadError` (with field
    paths) for anything else that does not fit either shape. `check_text` looks for NUL and
    unpaired surrogates in every string (`parse_body` skips it when the UTF-8 body has no escape
    that could produce one).
    """
    if check_text:
        bad = find_bad_text(document)
        if bad is not None:
            raise PayloadError({bad: ["Contains a NUL character or an unpaired surrogate."]})
    try:
        return _parse(document)
    except (OverflowError, ValueError, TypeError) as exc:
        if isinstance(exc, PayloadError):
            raise
        raise PayloadError({"_schema": [f"Values out of range: {type(exc).__name__}."]}) from exc


def _parse(document: Any) -> CallReport:
    if not isinstance(document, dict):
        raise PayloadError({"_schema": ["The body must be a JSON object."]})
    if "version" in document:
        version = document["version"]
        if not isinstance(version, str | int) or str(version) not in SUPPORTED_VERSIONS:
            raise UnsupportedVersion(
                {"version": [f"Unsupported payload version {version!r}; supported: 1."]}
            )
        document = {**document, "version": str(version)}
        try:
            return _v1_report(_V1_SCHEMA.load(document))
        except ValidationError as exc:
            raise PayloadError(_flatten(exc.messages)) from exc
    try:
        return _legacy_report(_LEGACY_SCHEMA.load(document))
    except ValidationError as exc:
        raise PayloadError(_flatten(exc.messages)) from exc


# NUL and unpaired surrogates can only come from these escapes once the body is strict UTF-8.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def _finite(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):  # 1e400 decodes to inf, which no JSON encoder writes back
        raise ValueError(literal)
    return number


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_json(body: bytes) -> Any:
    """The JSON document in `body`, which must be UTF-8 JSON text (RFC 8259); `NotJson` if not.

    UTF-16 and UTF-32 bodies, raw surrogate bytes, ``NaN``/``Infinity`` and numbers that do not
    fit a float or Python's integer conversion limit are all refused here.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotJson(f"The body is not UTF-8: {exc.reason} at byte {exc.start}.") from exc
    try:
        return json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise NotJson(f"The body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise NotJson("The body is nested too deeply.") from exc
    except ValueError as exc:  # an integer literal longer than Python converts, 1e400, NaN
        raise NotJson("The body contains a number out of range or a non-JSON constant.") from exc


def parse_body(body: bytes) -> CallReport:
    """Decode and validate a raw webhook body: the one way a body becomes a `CallReport`.

    Raises `NotJson` when the body is not UTF-8 JSON text, `UnsupportedVersion` and
    `PayloadError` (with field paths) when it is JSON but no call report we can deliver.
    """
    document = decode_json(body)
    return parse_report(document, check_text=_SUSPECT_ESCAPE.search(body) is not None)


def report_from_json(body: bytes | str) -> CallReport:
    """Decode and validate a stored raw body (accepted once, so it parses again)."""
    return parse_body(body.encode() if isinstance(body, str) else body)
