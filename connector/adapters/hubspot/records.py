"""What a delivery writes: the bodies of the call, tasks, note and ticket with their
associations, built from the job and the options (nothing is sent here), and `describe_write`
listing the requests `write` sends."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from typing import Any

from connector.adapters import DeliveryJob, TaskSpec
from connector.adapters.hubspot.options import HubSpotOptions
from connector.adapters.hubspot.values import _iso, _properties
from connector.phone import parse_sipgate
from connector.text import paragraphs_html, truncate_to

#: HubSpot-defined association type ids (category ``HUBSPOT_DEFINED``), as in the SDK's
#: ``hubspot.crm.association_type.AssociationType``.
ASSOCIATION_TYPES: Mapping[tuple[str, str], int] = {
    ("calls", "contacts"): 194,
    ("calls", "companies"): 182,
    ("calls", "deals"): 206,
    ("tasks", "contacts"): 204,
    ("tasks", "companies"): 192,
    ("notes", "contacts"): 202,
    ("notes", "companies"): 190,
    ("tickets", "contacts"): 16,
    ("tickets", "companies"): 339,
}

_MAX_BATCH = 100  # HubSpot batch endpoints take at most 100 inputs
_TEXT_LIMIT = 65_536  # characters of a HubSpot text property

_CATEGORY = "HUBSPOT_DEFINED"
_PRIORITIES = {"low": "LOW", "normal": "MEDIUM", "medium": "MEDIUM", "high": "HIGH"}


def _due_timestamp(due: date) -> str:
    """A due date as a moment: noon UTC falls on that calendar day in every UTC±11 zone."""
    return _iso(datetime.combine(due, day_time(12, 0), tzinfo=UTC))


def _units(text: str) -> int:
    """Length in UTF-16 code units, as HubSpot (Java) counts characters."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _note_body(text: str) -> str:
    """Plain `text` (the transcript) as HTML paragraphs within a text property's limit;
    when it is too long, the longest cut of the text whose HTML fits, marked ``[…]``."""
    body = paragraphs_html(text)
    if _units(body) <= _TEXT_LIMIT:
        return body
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if _units(paragraphs_html(truncate_to(text, middle, " […]"))) <= _TEXT_LIMIT:
            low = middle
        else:
            high = middle - 1
    return paragraphs_html(truncate_to(text, low, " […]"))


def _number_for_hubspot(raw: str) -> str:
    number = parse_sipgate(raw)
    return number.e164 if number is not None else raw


@dataclass(frozen=True)
class _Link:
    """One association of a new object with an existing record."""

    to_type: str  # "contacts", "companies", "deals"
    to_id: str
    type_id: int

    def body(self) -> dict[str, Any]:
        return {
            "to": {"id": self.to_id},
            "types": [{"associationCategory": _CATEGORY, "associationTypeId": self.type_id}],
        }


@dataclass(frozen=True)
class _Create:
    """One object to create: type (``calls``, ``tasks``…), properties, associations."""

    object_type: str
    properties: Mapping[str, str]
    links: tuple[_Link, ...] = ()

    def body(self) -> dict[str, Any]:
        return {"properties": dict(self.properties), "associations": [k.body() for k in self.links]}


class CallRecords:
    """What a delivery writes under `options`: the bodies of the call, tasks, note and ticket
    with their associations, and `describe_write` listing the requests."""

    def __init__(self, options: HubSpotOptions) -> None:
        self.options = options

    def contacts(self, job: DeliveryJob) -> list[str]:
        return list(dict.fromkeys(m.id for m in job.matches if m.object_type == "contact"))

    def _companies(self, job: DeliveryJob) -> list[str]:
        ids = [m.id for m in job.matches if m.object_type == "company"]
        if self.options.associate_company:
            ids += [m.parent_id for m in job.matches if m.object_type == "contact" and m.parent_id]
        return list(dict.fromkeys(ids))

    def _links(self, job: DeliveryJob, object_type: str) -> tuple[_Link, ...]:
        links = [
            _Link("contacts", cid, ASSOCIATION_TYPES[(object_type, "contacts")])
            for cid in self.contacts(job)
        ]
        if object_type == "calls" or not links:
            # Follow-ups go on the contacts; on companies only when no contact matched.
            links += [
                _Link("companies", cid, ASSOCIATION_TYPES[(object_type, "companies")])
                for cid in self._companies(job)
            ]
        return tuple(links)

    def _call_properties(self, job: DeliveryJob) -> dict[str, str]:
        report = job.report
        owned: dict[str, Any] = {
            "hs_timestamp": _iso(report.start_time),
            "hs_call_direction": "INBOUND" if report.direction == "IN" else "OUTBOUND",
            "hs_call_duration": report.duration // timedelta(milliseconds=1),
            "hs_call_from_number": _number_for_hubspot(report.from_number) or None,
            "hs_call_to_number": _number_for_hubspot(report.to_number) or None,
            "hs_call_status": "COMPLETED",
            "hubspot_owner_id": job.owner_id,
            self.options.call_id_property: report.call_id,
        }
        if self.options.unique_call_property:
            owned.pop(self.options.unique_call_property, None)  # it is the upsert's id
        return {**_properties(job.fields), **_properties(owned)}

    def call_create(self, job: DeliveryJob, deal_id: str | None) -> _Create:
        links = self._links(job, "calls")
        if deal_id:
            links += (_Link("deals", deal_id, ASSOCIATION_TYPES[("calls", "deals")]),)
        return _Create("calls", self._call_properties(job), links)

    def task_creates(self, job: DeliveryJob) -> list[_Create]:
        links = self._links(job, "tasks")
        return [self._task_create(spec, job, links) for spec in job.tasks]

    @staticmethod
    def task_batches(tasks: list[_Create]) -> list[list[_Create]]:
        """The tasks in batches of at most 100 (HubSpot's limit), one request each."""
        return [tasks[start : start + _MAX_BATCH] for start in range(0, len(tasks), _MAX_BATCH)]

    @staticmethod
    def _task_create(spec: TaskSpec, job: DeliveryJob, links: tuple[_Link, ...]) -> _Create:
        properties = _properties(
            {
                "hs_task_subject": spec.subject,
                "hs_task_body": paragraphs_html(spec.body) or None,
                "hs_timestamp": _due_timestamp(spec.due),
                "hs_task_priority": _PRIORITIES.get(spec.priority.lower(), "MEDIUM"),
                "hs_task_status": "NOT_STARTED",
                "hs_task_type": "TODO",
                "hubspot_owner_id": spec.owner_id or job.owner_id,
            }
        )
        return _Create("tasks", properties, links)

    def note_create(self, job: DeliveryJob) -> _Create | None:
        if not job.overflow.strip():
            return None
        properties = _properties(
            {
                "hs_timestamp": _iso(job.report.start_time),
                "hs_note_body": _note_body(job.overflow),
                "hubspot_owner_id": job.owner_id,
            }
        )
        return _Create("notes", properties, self._links(job, "notes"))

    def ticket_create(self, job: DeliveryJob) -> _Create | None:
        channel, ticket = job.report.channel, self.options.ticket
        if ticket is None or channel is None:
            return None
        wanted = {str(c).casefold() for c in ticket.channels}
        if channel.id.casefold() not in wanted and channel.name.casefold() not in wanted:
            return None
        subject = job.report.headline or str(job.fields.get("hs_call_title") or "") or "Call"
        properties = _properties(
            {
                "subject": truncate_to(subject, 255),
                "content": job.report.summary or None,
                "hs_pipeline": ticket.pipeline,
                "hs_pipeline_stage": ticket.stage,
                "hubspot_owner_id": job.owner_id,
            }
        )
        return _Create("tickets", properties, self._links(job, "tickets"))

    def deal_search_body(self, contact_id: str) -> dict[str, Any]:
        return {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "associations.contact",
                            "operator": "EQ",
                            "value": contact_id,
                        }
                    ]
                }
            ],
            "properties": ["dealstage", "hs_is_closed", "hs_lastmodifieddate", "pipeline"],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "DESCENDING"}],
            "limit": 20,
        }

    def describe_write(self, job: DeliveryJob) -> list[dict[str, Any]]:
        """Every request `write` would send for `job`, with exact bodies; sends nothing.

        The deal of ``deal_rule: most_recent_open`` is found at write time: its search is
        listed, and the call's association with the deal (206) is described there.
        """
        ops: list[dict[str, Any]] = []
        contacts = self.contacts(job)
        if self.options.deal_rule == "most_recent_open" and contacts:
            ops.append(
                {
                    "op": "search",
                    "object": "deals",
                    "method": "POST",
                    "path": "/crm/v3/objects/deals/search",
                    "body": self.deal_search_body(contacts[0]),
                    "then": "associate the call with the most recently modified open deal "
                    f"(type {ASSOCIATION_TYPES[('calls', 'deals')]})",
                }
            )
        call = self.call_create(job, None)
        if self.options.unique_call_property:
            ops.append(
                {
                    "op": "upsert",
                    "object": "calls",
                    "method": "POST",
                    "path": "/crm/v3/objects/calls/batch/upsert",
                    "body": {"inputs": [self.upsert_input(job, call)]},
                }
            )
            ops.extend(
                {
                    "op": "associate",
                    "object": "calls",
                    "method": "PUT",
                    "path": f"/crm/v4/objects/calls/{{call id}}/associations/{link.to_type}/"
                    f"{link.to_id}",
                    "body": [{"associationCategory": _CATEGORY, "associationTypeId": link.type_id}],
                }
                for link in call.links
            )
        else:
            ops.append(self.describe_create(call))
        ops.extend(
            {
                "op": "batch/create",
                "object": "tasks",
                "method": "POST",
                "path": "/crm/v3/objects/tasks/batch/create",
                "body": {"inputs": [t.body() for t in batch]},
            }
            for batch in self.task_batches(self.task_creates(job))
        )
        for extra in (self.note_create(job), self.ticket_create(job)):
            if extra is not None:
                ops.append(self.describe_create(extra))
        return ops

    @staticmethod
    def describe_create(create: _Create) -> dict[str, Any]:
        return {
            "op": "create",
            "object": create.object_type,
            "method": "POST",
            "path": f"/crm/v3/objects/{create.object_type}",
            "body": create.body(),
        }

    def upsert_input(self, job: DeliveryJob, call: _Create) -> dict[str, Any]:
        return {
            "idProperty": self.options.unique_call_property,
            "id": job.report.call_id,
            "properties": dict(call.properties),
        }
