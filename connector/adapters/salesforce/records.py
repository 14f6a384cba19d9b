"""The records one write creates and the sObject Collections requests that carry them.

Pure building, no I/O: the call Task, one open Task per action item, the Enhanced Note for text
that did not fit, the Case, the ``ContentDocumentLink`` of the note; each with its journal key
and the marker a retry looks it up by, derived from the sipgate call id only (``CallObject``;
the ``(sipgate call <id>)`` that ends the note's title and the case's subject). Field values are
cut to Salesforce's limits (`SUBJECT_LIMIT`, `DESCRIPTION_LIMIT`) and the mapping's other text
fields to the lengths the org's describe gave (`_merge_fields`).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from connector.adapters import CrmRecord, DeliveryJob, TaskSpec, truncate_to
from connector.adapters.salesforce.options import CaseOptions
from connector.payload import CallReport

#: Task.Subject, Task.CallObject, Task.CallDisposition and Case.Subject hold 255 characters.
SUBJECT_LIMIT: Final = 255
#: Task.Description ("Comments") and Case.Description hold 32,000 characters.
DESCRIPTION_LIMIT: Final = 32_000
#: The zone of the call's local date (``ActivityDate``) when the mapping does not set it and no
#: ``defaults.timezone`` was passed (`SalesforceAdapter.from_config` passes it).
CALL_DATE_ZONE: Final = "Europe/Berlin"

#: sObject Collections take at most 200 records per request.
_MAX_RECORDS: Final = 200

#: Fields the mapping may not set: they carry the links and the idempotency key.
_OWN_FIELDS: Final = frozenset({"id", "attributes", "callobject", "whoid", "whatid", "tasksubtype"})
_FIELD_LIMITS: Final = {
    "subject": SUBJECT_LIMIT,
    "description": DESCRIPTION_LIMIT,
    "calldisposition": SUBJECT_LIMIT,
}
#: Task fields the adapter writes itself or knows the limit of: a mapping that writes only
#: these needs no describe of the Task's field lengths.
_TASK_KNOWN_FIELDS: Final = frozenset(
    {
        *_FIELD_LIMITS,
        *_OWN_FIELDS,
        "calltype",
        "calldurationinseconds",
        "type",
        "activitydate",
        "status",
        "priority",
        "ownerid",
    }
)
#: Lead fields of known length (standard fields: their length is the same in every org).
LEAD_FIELD_LIMITS: Final = {
    "lastname": 80,
    "firstname": 40,
    "company": 255,
    "phone": 40,
    "title": 128,
    "description": DESCRIPTION_LIMIT,
}


# --- field values ----------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    """A mapping value as JSON for Salesforce: dates as ``YYYY-MM-DD``, datetimes in UTC."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _limited(name: str, value: Any, lengths: Mapping[str, int] | None = None) -> Any:
    """`value` cut to the known limit of field `name`, else to its length in `lengths` (lower
    case names → the org's length of text fields); other values unchanged."""
    limit = _FIELD_LIMITS.get(name.lower())
    if limit is not None and value is not None:
        return truncate_to(value, limit)
    length = (lengths or {}).get(name.lower())
    if length and isinstance(value, str):
        return truncate_to(value, length)
    return value


def _given(values: Mapping[str, Any], name: str) -> Any:
    """The value of field `name` in `values` (Salesforce field names ignore case), or None."""
    wanted = name.lower()
    return next((value for key, value in values.items() if key.lower() == wanted), None)


def _merge_fields(
    values: dict[str, Any],
    extra: Mapping[str, Any],
    skip: Iterable[str],
    lengths: Mapping[str, int] | None = None,
) -> None:
    """Add the mapping's `extra` fields to `values` (names ignore case; the adapter's own link
    and key fields and `skip` are left alone), each cut to its known limit or its length in
    `lengths` (see `_limited`)."""
    names = {name.lower(): name for name in values}
    skipped = {name.lower() for name in skip} | _OWN_FIELDS
    for name, value in extra.items():
        lower = name.lower()
        if lower in skipped:
            continue
        values[names.get(lower, name)] = _limited(name, _json_value(value), lengths)


def _call_object(call_id: str) -> str:
    """The sipgate call id as it fits ``Task.CallObject`` (255 characters)."""
    return truncate_to(call_id, SUBJECT_LIMIT, marker="")


def _follow_up_marker(call_id: str, number: int) -> str:
    """``CallObject`` of the `number`-th follow-up Task: ``<call id>#<number>``."""
    suffix = f"#{number}"
    return truncate_to(call_id, SUBJECT_LIMIT - len(suffix), marker="") + suffix


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _call_tag(call_id: str) -> str:
    """``(sipgate call <id>)``, cut to `SUBJECT_LIMIT`: what ends a note title or case subject,
    the marker a retry looks them up by (`_tagged`)."""
    return truncate_to(f"(sipgate call {call_id})", SUBJECT_LIMIT, marker="")


def _tagged(text: str, call_id: str) -> str:
    """`text`, then the call's tag (`_call_tag`), within `SUBJECT_LIMIT`: a note title or case
    subject that ends in the call id, whatever the rendered `text` was."""
    tag = _call_tag(call_id)
    room = SUBJECT_LIMIT - _utf16_len(tag) - 1
    cut = truncate_to(text, room) if room > 0 else ""
    return f"{cut} {tag}" if cut else tag


def _note_title(subject: str, call_id: str) -> str:
    """The note's title: the subject, then the call id (which makes the title unique)."""
    return _tagged(subject, call_id)


def _note_content(text: str) -> str:
    """Enhanced Note content: HTML paragraphs of the escaped text, base64 encoded.

    Salesforce strips new lines and unsafe HTML from ``ContentNote.Content``, so every line
    becomes its own ``<p>``.
    """
    paragraphs = "".join(
        f"<p>{html.escape(line)}</p>" for line in text.splitlines() if line.strip()
    )
    return base64.b64encode((paragraphs or "<p></p>").encode("utf-8")).decode("ascii")


def _duration_seconds(report: CallReport) -> int:
    return int(report.duration.total_seconds() + 0.5)


# --- the plan of one write -------------------------------------------------------------------


@dataclass(frozen=True)
class _Targets:
    """What the call is logged on, derived from the chosen matches."""

    who_id: str | None = None
    who_type: str | None = None  # contact, lead, person_account
    account_id: str | None = None

    @property
    def contact_id(self) -> str | None:
        return self.who_id if self.who_type in ("contact", "person_account") else None


def _targets(matches: Sequence[CrmRecord]) -> _Targets:
    """WhoId: the first contact, lead or person account; the account: the contact's, else the
    first matched account (a lead's task cannot have a WhatId)."""
    who = next(
        (
            r
            for r in matches
            if r.object_type in ("contact", "lead")
            or (r.object_type == "account" and r.extra.get("person_contact_id"))
        ),
        None,
    )
    account = next((r.id for r in matches if r.object_type == "account"), None)
    if who is None:
        return _Targets(None, None, account)
    if who.object_type == "contact":
        return _Targets(who.id, "contact", who.parent_id or account)
    if who.object_type == "lead":
        return _Targets(who.id, "lead", None)
    return _Targets(str(who.extra["person_contact_id"]), "person_account", who.id)


@dataclass(frozen=True)
class _Item:
    """One record of the write: its journal key, sObject type, fields and lookup marker."""

    key: str
    sobject: str
    values: Mapping[str, Any]
    marker: str = ""

    def record(self) -> dict[str, Any]:
        return {"attributes": {"type": self.sobject}, **self.values}


@dataclass(frozen=True)
class _Request:
    """One sObject Collections request."""

    method: str  # POST (create) or PATCH (upsert by external id)
    path: str
    items: tuple[_Item, ...]

    def body(self) -> dict[str, Any]:
        return {"allOrNone": False, "records": [item.record() for item in self.items]}


@dataclass(frozen=True)
class _Plan:
    items: tuple[_Item, ...]
    targets: _Targets
    what_id: str | None
    link_target: str | None
    lookups: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class _TaskValues:
    """The org's Task picklist values the adapter needs (read from TaskStatus/TaskPriority)."""

    closed_status: str
    open_status: str
    priorities: Mapping[str, str] = field(default_factory=dict)


# --- the records -----------------------------------------------------------------------------


def _subject(job: DeliveryJob) -> str:
    report = job.report
    given = _given(job.fields, "Subject")
    text = str(given) if given not in (None, "") else report.headline
    if not text:
        text = "Inbound call" if report.direction == "IN" else "Outbound call"
    return truncate_to(text, SUBJECT_LIMIT)


def _description(job: DeliveryJob) -> str:
    given = _given(job.fields, "Description")
    if given not in (None, ""):
        return truncate_to(given, DESCRIPTION_LIMIT)
    report = job.report
    lines = [report.summary] if report.summary else []
    lines += [f"- {point}" for point in report.key_points]
    return truncate_to("\n".join(lines), DESCRIPTION_LIMIT)


def _call_task(
    job: DeliveryJob,
    targets: _Targets,
    what_id: str | None,
    values: _TaskValues,
    external_id_field: str | None,
    *,
    zone: str = CALL_DATE_ZONE,
    lengths: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The closed call Task; ``CallObject`` (and `external_id_field`) hold the call id.

    ``ActivityDate`` is the call's date in `zone` unless the mapping sets it; the mapping's
    other text fields are cut to their `lengths` (lower case names, from the org's describe).
    """
    report = job.report
    start = report.start_time.astimezone(ZoneInfo(zone))
    task: dict[str, Any] = {
        "Subject": _subject(job),
        "Description": _description(job),
        "TaskSubtype": "Call",
        "Type": "Call",
        "CallType": "Inbound" if report.direction == "IN" else "Outbound",
        "CallDurationInSeconds": _duration_seconds(report),
        "ActivityDate": start.date().isoformat(),
        "Status": values.closed_status,
    }
    _merge_fields(task, job.fields, skip=("Subject", "Description"), lengths=lengths)
    if not task["Description"]:
        del task["Description"]
    task["CallObject"] = _call_object(report.call_id)
    if external_id_field:
        task[external_id_field] = task["CallObject"]
    if targets.who_id:
        task["WhoId"] = targets.who_id
    if what_id:
        task["WhatId"] = what_id
    if job.owner_id:
        task["OwnerId"] = job.owner_id
    return task


def _follow_up(
    spec: TaskSpec,
    number: int,
    job: DeliveryJob,
    targets: _Targets,
    what_id: str | None,
    values: _TaskValues,
    priorities: Mapping[str, str],
    external_id_field: str | None,
) -> _Item:
    """The open Task of the `number`-th action item (marker ``<call id>#<number>``)."""
    marker = _follow_up_marker(job.report.call_id, number)
    task: dict[str, Any] = {
        "Subject": truncate_to(spec.subject or "Follow-up", SUBJECT_LIMIT),
        "ActivityDate": spec.due.isoformat(),
        "Priority": priorities.get(spec.priority, priorities["normal"]),
        "Status": values.open_status,
        "CallObject": marker,
    }
    if spec.body:
        task["Description"] = truncate_to(spec.body, DESCRIPTION_LIMIT)
    if external_id_field:
        task[external_id_field] = marker
    owner = spec.owner_id or job.owner_id
    if owner:
        task["OwnerId"] = owner
    if targets.who_id:
        task["WhoId"] = targets.who_id
    if what_id:
        task["WhatId"] = what_id
    return _Item(f"follow_up.{number}", "Task", task, marker)


def _case_applies(case: CaseOptions, report: CallReport) -> bool:
    """Whether the call came in on one of the ``case.channels``."""
    if report.channel is None:
        return False
    return report.channel.id in case.channels or report.channel.name in case.channels


def _case(case: CaseOptions, job: DeliveryJob, targets: _Targets, subject: str) -> _Item:
    """The Case of the call (`case`: the ``case`` option). Its subject is `subject`, then the
    call's tag (`_tagged`): ``Subject`` is filterable, so a retry finds the case by the call id
    (the marker), never another call's case with the same subject."""
    call_id = job.report.call_id
    values: dict[str, Any] = {"Subject": _tagged(subject, call_id), "Origin": case.origin}
    description = _description(job)
    if description:
        values["Description"] = description
    if case.status:
        values["Status"] = case.status
    if case.record_type:
        values["RecordTypeId"] = case.record_type
    if targets.contact_id:
        values["ContactId"] = targets.contact_id
    if targets.account_id:
        values["AccountId"] = targets.account_id
    if job.remote is not None:
        values["SuppliedPhone"] = truncate_to(job.remote.international(), 40, marker="")
    return _Item("case", "Case", values, _call_tag(call_id))


# --- the requests ----------------------------------------------------------------------------


def _requests(items: Sequence[_Item], external: str | None) -> list[_Request]:
    """`items` in collection requests: Tasks upserted by the `external` id field when it is set,
    everything else created; at most `_MAX_RECORDS` records per request."""
    tasks = tuple(item for item in items if external and item.sobject == "Task")
    others = tuple(item for item in items if item not in tasks)
    out = [
        _Request("PATCH", f"composite/sobjects/Task/{external}", tasks[i : i + _MAX_RECORDS])
        for i in range(0, len(tasks), _MAX_RECORDS)
    ]
    out += [
        _Request("POST", "composite/sobjects", others[i : i + _MAX_RECORDS])
        for i in range(0, len(others), _MAX_RECORDS)
    ]
    return out


def _link(note_id: str, target: str) -> _Request:
    """The request that attaches the note `note_id` to the record `target`."""
    values = {
        "ContentDocumentId": note_id,
        "LinkedEntityId": target,
        "ShareType": "I",
        "Visibility": "AllUsers",
    }
    return _Request(
        "POST", "composite/sobjects", (_Item("note_link", "ContentDocumentLink", values),)
    )
