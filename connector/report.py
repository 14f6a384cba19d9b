"""A call as the connector knows it (`CallReport`), the errors of a body that is not one, and the
validation parts every payload shape shares (bounds, text fields, transcript chunks, JSON decoding).

`connector.payload` (sipgate's JSON shapes) and `connector.vcon` (vCon) build on this module.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

__all__ = [
    "CALL_ID",
    "EARLIEST",
    "LATEST",
    "MAX_DURATION_MS",
    "NUMBER",
    "WHEN",
    "ActionItem",
    "CallReport",
    "Channel",
    "ChannelSchema",
    "Chunks",
    "LenientSchema",
    "NotJson",
    "PayloadError",
    "SmallTalkItem",
    "TranscriptChunk",
    "UnsupportedVersion",
    "User",
    "UserSchema",
    "decode_json",
    "find_bad_text",
    "flatten_errors",
    "phone_field",
    "text_field",
]

#: Calls happen now; these bounds keep dates and durations inside what every layer can handle.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
MAX_DURATION_MS = 7 * 24 * 3600 * 1000
# Identifiers and numbers reach log lines and fixed-width columns (ledger, database target): no
# control characters (a newline would forge a log line), and no more than the columns hold.
_CONTROL = "\x00-\x1f\x7f-\x9f\u2028\u2029"
CALL_ID = validate.Regexp(
    f"^[^{_CONTROL}]{{1,255}}\\Z", error="Must be 1 to 255 printable characters."
)
NUMBER = validate.Regexp(
    f"^[^{_CONTROL}]{{0,64}}\\Z", error="Must be at most 64 printable characters."
)
WHEN = validate.Range(min=EARLIEST, max=LATEST, error="Must be between 2000 and 2100.")


def text_field(limit: int | None = None, **kwargs: Any) -> fields.String:
    """An optional text field (missing or null → empty), at most `limit` characters."""
    bound = [validate.Length(max=limit)] if limit else []
    return fields.String(
        load_default=kwargs.pop("load_default", ""), allow_none=True, validate=bound, **kwargs
    )


def phone_field(**kwargs: Any) -> fields.String:
    # Empty or "anonymous" numbers are legal: a withheld caller ID.
    return fields.String(load_default="", allow_none=True, validate=NUMBER, **kwargs)


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


class LenientSchema(Schema):
    class Meta:
        unknown = EXCLUDE


class UserSchema(LenientSchema):
    userId = text_field(64)
    accountId = text_field(64)
    fullUserId = text_field(128)
    firstName = text_field(255)
    lastName = text_field(255)
    fullName = text_field(255)


class ChannelSchema(LenientSchema):
    id = fields.String(required=True, validate=validate.Length(max=255))
    name = text_field(255)


class Chunks(fields.Field[list[dict[str, Any]]]):
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


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested error dict into ``{"call.startTime": ["..."]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            flat.update(flatten_errors(value, path))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        flat[prefix or "_schema"] = list(messages)
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat


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
