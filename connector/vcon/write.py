"""`CallReport` → unsigned vCon document (draft-ietf-vcon-vcon-core), the inverse of `parse`.

Party 0 is the caller and party 1 the callee, each with a ``tel:`` URI (a withheld number has
none); our side is ``role: agent`` and carries the first sipgate user (its ids in a ``sipgate``
object), further users follow as parties of their own. The one dialog has the start, duration,
parties and ``originator: 0``; sipgate's example has no recording, so the dialog carries no media.
The AI content is one ``analysis`` entry per kind (vendor ``sipgate``, the LLM provider as
``product``); the channel sits in a top-level ``sipgate`` object. `parse.report_from_vcon` reads
all of it back; only the payload version (``vcon``) and the end time (start + duration) differ.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.report import CallReport, User

__all__ = ["VCON_VERSION", "vcon_document"]

VCON_VERSION = "0.4.0"
VENDOR = "sipgate"


def _tel(number: str) -> dict[str, str]:
    if not number or number == "anonymous":
        return {}
    return {"tel": f"tel:+{number}" if number.isdigit() else f"tel:{number}"}


def _user_party(number: str, user: User | None) -> dict[str, Any]:
    party: dict[str, Any] = {**_tel(number), "role": "agent"}
    if user is not None:
        if user.full_name:
            party["name"] = user.full_name
        party["sipgate"] = {
            "userId": user.user_id,
            "fullUserId": user.full_user_id,
            "accountId": user.account_id,
            "firstName": user.first_name,
            "lastName": user.last_name,
        }
    return party


def _parties(report: CallReport) -> list[dict[str, Any]]:
    users: list[User | None] = list(report.users) or [None]
    ours = _user_party(report.local_number, users[0])
    theirs = {**_tel(report.remote_number), "role": "customer"}
    pair = [theirs, ours] if report.direction == "IN" else [ours, theirs]
    return pair + [_user_party(report.local_number, u) for u in users[1:]]


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _analysis(report: CallReport) -> list[dict[str, Any]]:
    kinds: list[tuple[str, Any]] = [
        ("headline", report.headline),
        ("summary", report.summary),
        ("key_points", list(report.key_points)),
        ("topics", list(report.topics)),
        ("action_items", [a.content for a in report.action_items]),
        (
            "small_talk",
            [{"topic": s.topic, "description": s.description} for s in report.small_talk],
        ),
        ("call_scenarios", [dict(s) for s in report.scenarios]),
    ]
    if report.transcript or report.transcript_chunks:
        chunks = [
            {
                "speaker": c.speaker,
                "startTime": c.start_ms,
                "endTime": c.end_ms,
                "content": c.content,
            }
            for c in report.transcript_chunks
        ]
        kinds.insert(0, ("transcript", {"content": report.transcript, "chunks": chunks}))
    product = {"product": report.llm_provider} if report.llm_provider else {}
    entries = []
    for kind, value in kinds:
        if not value:
            continue
        text = isinstance(value, str)
        entries.append(
            {
                "type": kind,
                "dialog": 0,
                "vendor": VENDOR,
                **product,
                "mediatype": "text/plain" if text else "application/json",
                "encoding": "none" if text else "json",
                "body": value if text else json.dumps(value, ensure_ascii=False),
            }
        )
    return entries


def vcon_document(report: CallReport, created_at: datetime | None = None) -> dict[str, Any]:
    """The vCon of `report`; ``created_at`` defaults to now."""
    parties = _parties(report)
    document: dict[str, Any] = {
        "vcon": VCON_VERSION,
        "uuid": report.call_id,
        "created_at": _rfc3339(created_at or datetime.now(UTC)),
        "parties": parties,
        "dialog": [
            {
                "type": "recording",
                "start": _rfc3339(report.start_time),
                "duration": report.duration / timedelta(seconds=1),
                "parties": list(range(len(parties))),
                "originator": 0,
            }
        ],
        "analysis": _analysis(report),
        "attachments": [],
    }
    if report.headline:
        document["subject"] = report.headline
    if report.channel is not None:
        document["sipgate"] = {"channel": {"id": report.channel.id, "name": report.channel.name}}
    return document
