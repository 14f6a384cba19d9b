"""The document a ``webhook`` target POSTs: the connector's normalised call, version 1.

Its shape is published as a JSON Schema (``call.v1.schema.json`` next to this module, printed by
``sipgate-crm schema forwarder``) and only grows compatibly: new optional keys may appear in v1,
anything else gets a new ``schema`` value. A receiver switches on ``schema``::

    {
      "schema": "urn:sipgate-crm:call:v1",
      "target": "n8n",                       # the target entry's name
      "delivery": {"id": "msg_…", "owner_id": null, "language": "en"},
      "call": {"id": …, "direction": "IN", "from_number": …, "remote_number": "+49…", …},
      "fields": {"subject": "…"},            # the target's mapping, rendered (may be empty)
      "tasks": [{"subject": …, "body": …, "due": "2026-04-10", "priority": "high", …}]
    }

``delivery.id`` equals the ``webhook-id`` header: the same for every attempt and every replay of
the delivery of one call to one target, so receivers dedupe on it. The transcript (``transcript``
and ``transcript_chunks`` in ``call``) is only sent with ``include_transcript``. The document
holds nothing that changes between attempts, so a retry sends the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from importlib import resources
from typing import Any, Final

from connector.adapters import CallReport, DeliveryJob

__all__ = ["SCHEMA_FILE", "SCHEMA_ID", "call_document", "delivery_id", "encode", "json_schema"]

#: The ``schema`` value of the documents this version writes (also the JSON Schema's ``$id``).
SCHEMA_ID: Final = "urn:sipgate-crm:call:v1"
#: The JSON Schema of the document, shipped as package data.
SCHEMA_FILE: Final = resources.files(__package__) / "call.v1.schema.json"


def delivery_id(target: str, call_id: str) -> str:
    """The ``webhook-id`` of the delivery of `call_id` to `target`: ``msg_`` and 32 hex digits
    of a SHA-256 of both, so it repeats on every attempt and replay and reveals neither."""
    digest = hashlib.sha256(f"{target}\x00{call_id}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _call(report: CallReport, remote: str | None, with_transcript: bool) -> dict[str, Any]:
    call: dict[str, Any] = {
        "id": report.call_id,
        "payload_version": report.payload_version,
        "direction": report.direction,
        "from_number": report.from_number,
        "to_number": report.to_number,
        "remote_number": remote,
        "start_time": _time(report.start_time),
        "end_time": _time(report.end_time),
        "duration_ms": report.duration // timedelta(milliseconds=1),
        "users": [
            {
                "user_id": u.user_id,
                "full_user_id": u.full_user_id,
                "account_id": u.account_id,
                "first_name": u.first_name,
                "last_name": u.last_name,
                "full_name": u.full_name,
            }
            for u in report.users
        ],
        "channel": None
        if report.channel is None
        else {"id": report.channel.id, "name": report.channel.name},
        "llm_provider": report.llm_provider,
        "headline": report.headline,
        "summary": report.summary,
        "key_points": list(report.key_points),
        "topics": list(report.topics),
        "action_items": [a.content for a in report.action_items],
        "small_talk": [{"topic": s.topic, "description": s.description} for s in report.small_talk],
    }
    if with_transcript:
        call["transcript"] = report.transcript
        call["transcript_chunks"] = [
            {"speaker": c.speaker, "start_ms": c.start_ms, "end_ms": c.end_ms, "content": c.content}
            for c in report.transcript_chunks
        ]
    return call


def call_document(job: DeliveryJob, target: str, *, include_transcript: bool) -> dict[str, Any]:
    """The v1 document of `job` for `target` (module docstring); the same for every attempt."""
    report = job.report
    language = job.options.get("language")
    return {
        "schema": SCHEMA_ID,
        "target": target,
        "delivery": {
            "id": delivery_id(target, report.call_id),
            "owner_id": job.owner_id,
            "language": language if isinstance(language, str) else None,
        },
        "call": _call(report, job.remote.e164 if job.remote else None, include_transcript),
        "fields": {name: str(value) for name, value in job.fields.items()},
        "tasks": [
            {
                "subject": t.subject,
                "body": t.body,
                "due": t.due.isoformat(),
                "priority": t.priority,
                "owner_id": t.owner_id,
            }
            for t in job.tasks
        ],
    }


def encode(document: dict[str, Any]) -> bytes:
    """The bytes sent and signed: compact UTF-8 JSON, keys in the order written."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of the v1 document."""
    loaded: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return loaded
