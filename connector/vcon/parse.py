"""Unsigned vCon (draft-ietf-vcon-vcon-core) → `CallReport`: the one place that decides which
vCon is accepted.

What is read:

* ``uuid`` is the call id (kept as it is, so a repeated vCon is a duplicate like repeated JSON);
* the first ``dialog`` object is the call: ``start`` (RFC 3339), ``duration`` (seconds),
  ``parties`` and ``originator`` (a party index; without it the dialog's first party);
* ``parties``: ``tel`` (a ``tel:`` URI or a plain number) gives the number, ``name`` the name.
  A party is *ours* (a sipgate user) when its ``role`` (or ``meta.role``) is ``agent`` or it
  carries a ``sipgate`` object (``userId``, ``fullUserId``, ``accountId``, ``firstName``,
  ``lastName``). When the originator is ours the call is ``OUT``, otherwise ``IN``; a vCon that
  marks no party as ours is an inbound call from its originator. Our parties with a name or a
  ``sipgate`` object become the report's users;
* ``analysis`` entries by ``type`` (case and ``-``/``_`` ignored): ``transcript``, ``summary``,
  ``headline``, ``key_points``, ``topics``, ``action_items``, ``small_talk``, ``call_scenarios``,
  their ``body`` encoded ``none``, ``json`` or ``base64url``; the first entry's ``product`` is the
  LLM provider. Other types, ``attachments`` and unknown keys are ignored;
* ``subject`` is the headline when no ``headline`` entry exists; a top-level ``sipgate`` object
  may name the ``channel`` (``id``, ``name``).

The end time is the start plus the duration; the payload version is ``vcon``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import ValidationError, fields, validate

from connector.report import (
    CALL_ID,
    MAX_DURATION_MS,
    NUMBER,
    WHEN,
    ActionItem,
    CallReport,
    Channel,
    ChannelSchema,
    Chunks,
    LenientSchema,
    PayloadError,
    SmallTalkItem,
    TranscriptChunk,
    User,
    UserSchema,
    flatten_errors,
    text_field,
)

__all__ = ["PAYLOAD_VERSION", "is_vcon", "report_from_vcon"]

PAYLOAD_VERSION = "vcon"
_ENCODINGS = ("none", "json", "base64url")


class _PartySchema(LenientSchema):
    tel = fields.String(load_default="", allow_none=True, validate=validate.Length(max=300))
    name = text_field(255)
    role = text_field(64)
    meta = fields.Dict(load_default=None, allow_none=True)
    sipgate = fields.Nested(UserSchema, load_default=None, allow_none=True)


class _PartyRef(fields.Field[list[int]]):
    """A party index, or a list of them (nested lists for parties joining a conference)."""

    default_error_messages = {"invalid": "Must be a party index or a list of party indexes."}

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> list[int]:
        items = value if isinstance(value, list) else [value]
        flat: list[int] = []
        for item in items:
            for index in item if isinstance(item, list) else [item]:
                if isinstance(index, bool) or not isinstance(index, int) or index < -1:
                    raise self.make_error("invalid")
                if index >= 0:  # -1: a party that is not (yet) known
                    flat.append(index)
        return flat


class _DialogSchema(LenientSchema):
    type = text_field(64)
    start = fields.AwareDateTime(required=True, default_timezone=UTC, validate=WHEN)
    duration = fields.Float(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=0, max=MAX_DURATION_MS / 1000),
    )
    parties = _PartyRef(load_default=list, allow_none=True)
    originator = fields.Integer(
        strict=True, load_default=None, allow_none=True, validate=validate.Range(min=0)
    )


class _AnalysisSchema(LenientSchema):
    type = fields.String(required=True, validate=validate.Length(min=1, max=64))
    encoding = fields.String(load_default="none", validate=validate.OneOf(_ENCODINGS))
    mediatype = text_field(255)
    product = text_field(64, load_default=None)
    body = fields.Raw(load_default=None, allow_none=True)


class _ExtensionSchema(LenientSchema):
    channel = fields.Nested(ChannelSchema, load_default=None, allow_none=True)


class _VconSchema(LenientSchema):
    vcon = fields.String(required=True, validate=validate.Length(min=1, max=32))
    uuid = fields.String(required=True, validate=CALL_ID)
    subject = text_field()
    parties = fields.List(
        fields.Nested(_PartySchema), required=True, validate=validate.Length(min=1)
    )
    dialog = fields.List(
        fields.Nested(_DialogSchema),
        required=True,
        validate=validate.Length(min=1, error="A call needs at least one dialog object."),
    )
    analysis = fields.List(fields.Nested(_AnalysisSchema), load_default=list, allow_none=True)
    sipgate = fields.Nested(_ExtensionSchema, load_default=None, allow_none=True)


_SCHEMA = _VconSchema()
_CHUNKS = Chunks()


def is_vcon(document: Any) -> bool:
    """Whether `document` is an unsigned vCon: a JSON object with a ``vcon`` version key."""
    return isinstance(document, dict) and "vcon" in document


# --- parties --------------------------------------------------------------------------------


def _number(tel: str | None) -> str:
    """The number of a ``tel`` value as sipgate writes numbers: digits without ``+``."""
    value = (tel or "").strip()
    if value[:4].lower() == "tel:":
        value = value[4:]
    value = value.split(";", 1)[0]  # ;phone-context=…, ;ext=…
    for separator in "-.() ":
        value = value.replace(separator, "")
    return value[1:] if value.startswith("+") else value


def _is_ours(party: Mapping[str, Any]) -> bool:
    meta = party.get("meta") or {}
    roles = {str(party.get("role") or ""), str(meta.get("role") or "")}
    return party.get("sipgate") is not None or "agent" in {r.lower() for r in roles}


def _user(party: Mapping[str, Any]) -> User | None:
    extension = party.get("sipgate") or {}
    name = str(party.get("name") or "")
    if not name and not extension:
        return None
    return User(
        user_id=str(extension.get("userId") or ""),
        full_user_id=str(extension.get("fullUserId") or ""),
        account_id=str(extension.get("accountId") or ""),
        first_name=str(extension.get("firstName") or ""),
        last_name=str(extension.get("lastName") or ""),
        full_name=name or str(extension.get("fullName") or ""),
    )


# --- analysis bodies ------------------------------------------------------------------------


def _decoded(entry: Mapping[str, Any]) -> Any:
    """The body of an analysis entry, its encoding undone (JSON text becomes a JSON value)."""
    body = entry.get("body")
    encoding = entry["encoding"]
    if encoding == "base64url":
        if not isinstance(body, str):
            raise ValueError("Must be base64url text (encoding base64url).")
        try:
            body = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8")
        except (binascii.Error, ValueError) as exc:
            raise ValueError("Not valid base64url-encoded UTF-8 (encoding base64url).") from exc
        if not (entry.get("mediatype") or "").endswith("json"):
            return body
        encoding = "json"
    if encoding == "json" and isinstance(body, str):
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise ValueError("Not valid JSON text (encoding json).") from exc
    return body


def _text_of(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("content", "text", "summary", "transcript"):
            if isinstance(value.get(key), str):
                return str(value[key])
        return ""
    raise ValueError("Must be text or an object with a content string.")


def _texts(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [t for t in (_text_of(v) for v in value) if t]
    raise ValueError("Must be a list of strings (or of objects with a content string).")


def _small_talk(value: Any) -> list[SmallTalkItem]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError("Must be a list of objects with topic and description.")
    return [SmallTalkItem(_text_of(v.get("topic")), _text_of(v.get("description"))) for v in value]


def _scenarios(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError("Must be a list of objects.")
    return list(value)


def _transcript(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {"transcript": _text_of(value), "transcript_chunks": ()}
    try:
        chunks = _CHUNKS.deserialize(value.get("chunks") or [])
    except ValidationError as exc:
        raise ValueError(flatten_errors(exc.messages, "chunks")) from exc
    return {
        "transcript": _text_of(value),
        "transcript_chunks": tuple(
            TranscriptChunk(
                speaker=str(c.get("speaker") or ""),
                start_ms=c.get("startTime"),
                end_ms=c.get("endTime"),
                content=str(c.get("content") or ""),
            )
            for c in chunks
        ),
    }


def _summary(value: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"summary": _text_of(value)}
    if isinstance(value, dict):  # the v1 webhook's summary object
        if value.get("keyPoints") is not None:
            found["key_points"] = tuple(_texts(value["keyPoints"]))
        if value.get("topics") is not None:
            found["topics"] = tuple(_texts(value["topics"]))
    return found


_READERS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "transcript": _transcript,
    "summary": _summary,
    "headline": lambda v: {"headline": _text_of(v)},
    "callheadline": lambda v: {"headline": _text_of(v)},
    "keypoints": lambda v: {"key_points": tuple(_texts(v))},
    "topics": lambda v: {"topics": tuple(_texts(v))},
    "actionitems": lambda v: {"action_items": tuple(ActionItem(t) for t in _texts(v))},
    "smalltalk": lambda v: {"small_talk": tuple(_small_talk(v))},
    "smalltalkitems": lambda v: {"small_talk": tuple(_small_talk(v))},
    "callscenarios": lambda v: {"scenarios": tuple(_scenarios(v))},
}


def _analysis(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The report's AI fields from the analysis entries (the first entry of a kind wins)."""
    found: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for index, entry in enumerate(entries):
        reader = _READERS.get(entry["type"].lower().replace("_", "").replace("-", ""))
        if reader is None:
            continue
        try:
            values = reader(_decoded(entry))
        except ValueError as exc:
            detail = exc.args[0]
            if isinstance(detail, dict):
                errors.update({f"analysis.{index}.body.{k}": v for k, v in detail.items()})
            else:
                errors[f"analysis.{index}.body"] = [str(detail)]
            continue
        for key, value in values.items():
            found.setdefault(key, value)
        if entry.get("product"):
            found.setdefault("llm_provider", entry["product"])
    if errors:
        raise PayloadError(errors)
    return found


# --- the report -----------------------------------------------------------------------------


def _check_indexes(data: dict[str, Any]) -> None:
    count = len(data["parties"])
    errors: dict[str, list[str]] = {}
    dialog = data["dialog"][0]
    if any(i >= count for i in dialog["parties"] or ()):
        errors["dialog.0.parties"] = [f"Refers to a party that does not exist ({count} parties)."]
    if dialog["originator"] is not None and dialog["originator"] >= count:
        errors["dialog.0.originator"] = [f"Refers to a party that does not exist ({count})."]
    if errors:
        raise PayloadError(errors)


def _valid_numbers(data: dict[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    for index, party in enumerate(data["parties"]):
        try:
            NUMBER(_number(party.get("tel")))
        except ValidationError as exc:
            errors[f"parties.{index}.tel"] = [str(m) for m in exc.messages]
    if errors:
        raise PayloadError(errors)


def _sides(
    parties: list[dict[str, Any]], dialog: dict[str, Any]
) -> tuple[int, int | None, list[int]]:
    """The originator's party index, the other side's (``None``: nobody) and our parties.

    Outbound (the originator is ours): the other side is the first party of the dialog that is
    not ours. Inbound: our first party that is not the originator, or (no party is ours) the
    dialog's first party that is not the originator.
    """
    everyone = list(range(len(parties)))
    in_dialog = dialog["parties"] or everyone
    originator: int = dialog["originator"] if dialog["originator"] is not None else in_dialog[0]
    ours = [i for i in everyone if _is_ours(parties[i])]
    if originator in ours:
        candidates = [i for i in in_dialog if i not in ours] or [
            i for i in everyone if i not in ours
        ]
    else:
        candidates = [i for i in ours if i != originator] or [
            i for i in in_dialog if i != originator
        ]
    return originator, (candidates[0] if candidates else None), ours


def report_from_vcon(document: Any) -> CallReport:
    """Validate an unsigned vCon document and return its `CallReport`.

    Raises `PayloadError` with field paths (``dialog.0.start``, ``analysis.2.body``) when the
    vCon does not describe a call this module can read.
    """
    try:
        data: dict[str, Any] = _SCHEMA.load(document)
    except ValidationError as exc:
        raise PayloadError(flatten_errors(exc.messages)) from exc
    _valid_numbers(data)
    _check_indexes(data)
    parties: list[dict[str, Any]] = data["parties"]
    dialog = data["dialog"][0]
    originator, other, ours = _sides(parties, dialog)
    start: datetime = dialog["start"].astimezone(UTC)
    seconds = dialog["duration"]
    duration = (
        timedelta(milliseconds=round(seconds * 1000)) if seconds is not None else timedelta(0)
    )
    extension = data.get("sipgate") or {}
    channel = extension.get("channel")
    analysis = _analysis(data.get("analysis") or [])
    analysis.setdefault("headline", data.get("subject") or "")
    return CallReport(
        call_id=data["uuid"],
        payload_version=PAYLOAD_VERSION,
        from_number=_number(parties[originator].get("tel")),
        to_number=_number(parties[other].get("tel")) if other is not None else "",
        start_time=start,
        end_time=start + duration if seconds is not None else None,
        duration=duration,
        direction="OUT" if originator in ours else "IN",
        users=tuple(u for u in (_user(parties[i]) for i in ours) if u is not None),
        channel=Channel(channel["id"], str(channel.get("name") or "")) if channel else None,
        **analysis,
    )
