"""Validate sipgate webhook payloads and turn every accepted shape into one `CallReport`.

Three shapes exist:

* the Conversation Intelligence webhook, ``"version": "1"`` (numbers as E.164 digits without
  ``+``, ISO-8601 UTC times, ``duration`` in milliseconds, ``direction`` ``IN``/``OUT``);
* the older "AI Assistant" webhook, no ``version`` (``call.caller``/``call.callee`` with ``+``,
  epoch-millisecond times, ``duration`` in seconds, lower-case ``direction``, ``callHeadline`` a
  plain string and ``channel`` at the top level);
* a vCon (draft-ietf-vcon-vcon-core), unsigned or signed: `connector.vcon` reads it.

The schemas ignore fields they do not know (sipgate adds fields over time) and tolerate missing or
``null`` AI parts. Everything after this module works with `CallReport` only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import ValidationError, fields, validate

from connector.report import (
    CALL_ID,
    MAX_DURATION_MS,
    WHEN,
    ActionItem,
    CallReport,
    Channel,
    ChannelSchema,
    Chunks,
    LenientSchema,
    NotJson,
    PayloadError,
    SmallTalkItem,
    TranscriptChunk,
    UnsupportedVersion,
    User,
    UserSchema,
    decode_json,
    find_bad_text,
    flatten_errors,
    phone_field,
    text_field,
)
from connector.vcon import errors as vcon_errors
from connector.vcon import parse as vcon_parse
from connector.vcon import sign as vcon_sign

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

# --- version "1" (Conversation Intelligence webhook) ---------------------------------------


class _CallV1Schema(LenientSchema):
    id = fields.String(required=True, validate=CALL_ID)
    from_ = phone_field(data_key="from")
    to = phone_field()
    startTime = fields.AwareDateTime(required=True, default_timezone=UTC, validate=WHEN)
    endTime = fields.AwareDateTime(
        load_default=None, allow_none=True, default_timezone=UTC, validate=WHEN
    )
    duration = fields.Integer(
        strict=True,
        load_default=0,
        allow_none=True,
        validate=validate.Range(min=0, max=MAX_DURATION_MS),
    )
    direction = fields.String(required=True, validate=validate.OneOf(["IN", "OUT"]))
    users = fields.List(fields.Nested(UserSchema), load_default=list, allow_none=True)
    channel = fields.Nested(ChannelSchema, load_default=None, allow_none=True)


class _ContentSchema(LenientSchema):
    content = text_field()


class _TranscriptionSchema(LenientSchema):
    content = text_field()
    chunks = Chunks(load_default=list, allow_none=True)


class _SummarySchema(LenientSchema):
    content = text_field()
    keyPoints = fields.List(fields.String(), load_default=list, allow_none=True)
    topics = fields.List(fields.String(), load_default=list, allow_none=True)


class _SmallTalkSchema(LenientSchema):
    topic = text_field()
    description = text_field()


class _ProviderSchema(LenientSchema):
    llm = text_field(64, load_default=None)


class _AssistSchema(LenientSchema):
    provider = fields.Nested(_ProviderSchema, load_default=None, allow_none=True)
    transcription = fields.Nested(_TranscriptionSchema, load_default=None, allow_none=True)
    callScenarios = fields.List(fields.Dict(), load_default=None, allow_none=True)
    callHeadline = fields.Nested(_ContentSchema, load_default=None, allow_none=True)
    summary = fields.Nested(_SummarySchema, load_default=None, allow_none=True)
    actionItems = fields.List(fields.Nested(_ContentSchema), load_default=None, allow_none=True)
    smallTalkItems = fields.List(
        fields.Nested(_SmallTalkSchema), load_default=None, allow_none=True
    )


class _ReportV1Schema(LenientSchema):
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


class _CallLegacySchema(LenientSchema):
    id = fields.String(required=True, validate=CALL_ID)
    caller = phone_field()
    callee = phone_field()
    startTime = _EpochMillis(required=True, validate=WHEN)
    endTime = _EpochMillis(load_default=None, allow_none=True, validate=WHEN)
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
    users = fields.List(fields.Nested(UserSchema), load_default=list, allow_none=True)


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


class _ReportLegacySchema(LenientSchema):
    callHeadline = text_field()
    call = fields.Nested(_CallLegacySchema, required=True)
    channel = fields.Nested(ChannelSchema, load_default=None, allow_none=True)
    # Not publicly documented for this shape; accepted when present.
    summary = _TextOrContent(load_default=None, allow_none=True)
    keyPoints = fields.List(fields.String(), load_default=None, allow_none=True)
    topics = fields.List(fields.String(), load_default=None, allow_none=True)
    actionItems = fields.List(_TextOrContent(), load_default=None, allow_none=True)
    transcript = text_field(load_default=None)


# Schema instances are reusable and building them (with their nested schemas) is costly.
_V1_SCHEMA = _ReportV1Schema()
_LEGACY_SCHEMA = _ReportLegacySchema()


# --- conversion -----------------------------------------------------------------------------


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


def parse_report(
    document: Any, *, check_text: bool = True, trust: vcon_sign.VconTrust | None = None
) -> CallReport:
    """Validate a decoded JSON document and return its `CallReport`.

    Raises `UnsupportedVersion` for a ``version`` we do not know and `PayloadError` (with field
    paths) for anything else that does not fit any shape. `check_text` looks for NUL and
    unpaired surrogates in every string (`parse_body` skips it when the UTF-8 body has no escape
    that could produce one). A signed vCon's signature is checked against `trust`'s keys
    (``None``: not checked, as for bodies the webhook accepted before).
    """
    if vcon_sign.is_encrypted(document):
        raise vcon_errors.EncryptedVcon()
    signed = vcon_sign.is_signed(document)
    if signed:
        document = vcon_sign.open_signed(document, trust)
        if not vcon_parse.is_vcon(document) or vcon_sign.is_signed(document):
            raise PayloadError({"payload": ["The signed payload is not an unsigned vCon."]})
        check_text = True
    if check_text:
        bad = find_bad_text(document)
        if bad is not None:
            raise PayloadError({bad: ["Contains a NUL character or an unpaired surrogate."]})
    try:
        return _parse(document, signed=signed, trust=trust)
    except (OverflowError, ValueError, TypeError) as exc:
        if isinstance(exc, PayloadError):
            raise
        raise PayloadError({"_schema": [f"Values out of range: {type(exc).__name__}."]}) from exc


def _parse(document: Any, *, signed: bool, trust: vcon_sign.VconTrust | None) -> CallReport:
    if not isinstance(document, dict):
        raise PayloadError({"_schema": ["The body must be a JSON object."]})
    if "vcon" in document:
        if not signed and trust is not None and trust.required:
            raise vcon_errors.SignatureRequired()
        return vcon_parse.report_from_vcon(document)
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
            raise PayloadError(flatten_errors(exc.messages)) from exc
    try:
        return _legacy_report(_LEGACY_SCHEMA.load(document))
    except ValidationError as exc:
        raise PayloadError(flatten_errors(exc.messages)) from exc


# NUL and unpaired surrogates can only come from these escapes once the body is strict UTF-8.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def parse_body(body: bytes, trust: vcon_sign.VconTrust | None = None) -> CallReport:
    """Decode and validate a raw webhook body: the one way a body becomes a `CallReport`.

    Raises `NotJson` when the body is neither UTF-8 JSON text nor a compact JWS,
    `UnsupportedVersion` and `PayloadError` (with field paths) when it is no call report we can
    deliver. `trust` checks signed vCons (see `parse_report`).
    """
    compact = vcon_sign.compact_form(body)
    if compact is not None:
        return parse_report(compact, trust=trust)
    document = decode_json(body)
    return parse_report(document, check_text=_SUSPECT_ESCAPE.search(body) is not None, trust=trust)


def report_from_json(body: bytes | str) -> CallReport:
    """Decode and validate a stored raw body (accepted once, so it parses again)."""
    return parse_body(body.encode() if isinstance(body, str) else body)
