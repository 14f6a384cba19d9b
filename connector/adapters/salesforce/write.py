"""Writing one call: plan the records, send them, and make a retry create only what is missing.

The first attempt records what the call is logged on (``links``: WhoId, its kind, the account
and the WhatId, the open Opportunity included) and every retry reuses it, whatever the re-planned
job says. Every created id is recorded in the delivery's `Journal` at once. Before a composite
create is sent, the lookup marker of each of its records (``pending_markers``) and
``task_pending`` are recorded; when its outcome stays unknown (timeout, dropped connection, 5xx)
the retry first looks up what the lost answer would have told (`SalesforceWriter._reconcile`) by
those
markers, all derived from the sipgate call id: Tasks by ``CallObject``, the note by the
``(sipgate call <id>)`` that ends its title, the case by the same ending of its subject. Nothing
that is rendered anew on each attempt (the subject) is part of a lookup.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, timedelta
from typing import Any, Final

from connector.adapters import DeliveryJob, Journal, OutcomeUnknown, WriteResult
from connector.adapters.salesforce.client import SalesforceClient
from connector.adapters.salesforce.errors import _record_failures
from connector.adapters.salesforce.lengths import FieldLengths
from connector.adapters.salesforce.options import PolicyNeeds, SalesforceOptions
from connector.adapters.salesforce.records import (
    _TASK_KNOWN_FIELDS,
    CALL_DATE_ZONE,
    _call_tag,
    _call_task,
    _case,
    _case_applies,
    _follow_up,
    _Item,
    _link,
    _note_content,
    _note_title,
    _Plan,
    _Request,
    _requests,
    _Targets,
    _targets,
)
from connector.adapters.salesforce.soql import _select, _soql_ends_with, _soql_string
from connector.adapters.salesforce.taskvalues import OrgTaskValues

#: The package's logger: every module of the adapter logs under it.
log = logging.getLogger(__package__)

#: How much earlier than the call's start a record of the call may seem created (clock skew).
_CREATED_SLACK: Final = timedelta(days=1)

_PENDING: Final = "task_pending"
_PENDING_MARKERS: Final = "pending_markers"
_LINK_PENDING: Final = "note_link_pending"
_LINKS: Final = "links"


class SalesforceWriter:
    """`write` and `describe_write` of the Salesforce adapter, through `client`."""

    def __init__(
        self,
        client: SalesforceClient,
        task_values: OrgTaskValues,
        lengths: FieldLengths,
        options: SalesforceOptions,
        needs: PolicyNeeds,
    ) -> None:
        self.client = client
        self.task_values = task_values
        self.lengths = lengths
        self.options = options
        self.needs = needs

    # --- building the write ---------------------------------------------------------------------

    def _what_id(self, targets: _Targets, journal: Journal) -> tuple[str | None, dict[str, Any]]:
        """WhatId by ``what_rule`` (and the lookup it needed, for `describe_write`).

        A lead's Task has no WhatId; a call matched to an account only is logged on the
        account whatever the rule (``none`` means: not the contact's account).
        """
        rule = self.options.what_rule
        if targets.who_type == "lead" or not targets.account_id:
            return None, {}
        if rule == "none":
            return (None if targets.who_id else targets.account_id), {}
        if rule == "account":
            return targets.account_id, {}
        soql = _select(
            "Id",
            "Opportunity",
            f"AccountId = {_soql_string(targets.account_id)} AND IsClosed = false",
            "ORDER BY LastModifiedDate DESC LIMIT 1",
        )
        rows = self.client.query(soql, "open Opportunity lookup")
        found = str(rows[0]["Id"]) if rows else ""
        return found or targets.account_id, {"op": "GET query", "soql": soql, "found": found}

    def _links(
        self, job: DeliveryJob, journal: Journal
    ) -> tuple[_Targets, str | None, dict[str, Any]]:
        """WhoId (and its kind), account and WhatId of the call: as the first attempt recorded
        them, else resolved from `job`'s matches and recorded (with the lookup it needed)."""
        recorded = journal.get(_LINKS)
        if isinstance(recorded, Mapping):
            targets = _Targets(
                recorded.get("who_id") or None,
                recorded.get("who_type") or None,
                recorded.get("account_id") or None,
            )
            return targets, recorded.get("what_id") or None, {}
        targets = _targets(job.matches)
        what_id, lookup = self._what_id(targets, journal)
        journal.record(
            _LINKS,
            {
                "who_id": targets.who_id,
                "who_type": targets.who_type,
                "account_id": targets.account_id,
                "what_id": what_id,
            },
        )
        return targets, what_id, lookup

    def _plan(self, job: DeliveryJob, journal: Journal) -> _Plan:
        """Everything `write` creates for `job` (and the lookups that needs)."""
        targets, what_id, lookup = self._links(job, journal)
        values = self.task_values.statuses()
        priorities = self.task_values.priorities() if job.tasks else {}
        external = self.options.external_id_field
        lengths = self.lengths.of(
            "Task", job.fields, {*_TASK_KNOWN_FIELDS, *([external] if external else [])}
        )
        zone = self.needs.timezone or CALL_DATE_ZONE
        call = _call_task(job, targets, what_id, values, external, zone=zone, lengths=lengths)
        items = [_Item("task", "Task", call, call["CallObject"])]
        items += [
            _follow_up(spec, number, job, targets, what_id, values, priorities, external)
            for number, spec in enumerate(job.tasks, start=1)
        ]
        link_target = targets.who_id or what_id or targets.account_id
        if job.overflow.strip():
            if link_target:
                title = _note_title(call["Subject"], job.report.call_id)
                note = {"Title": title, "Content": _note_content(job.overflow)}
                items.append(_Item("note", "ContentNote", note, _call_tag(job.report.call_id)))
            else:
                log.warning(
                    "Salesforce target %r: call %s matched no record; the text that did not fit "
                    "the Task is not stored",
                    self.client.name,
                    job.report.call_id,
                )
        case = self.options.case
        if case is not None and _case_applies(case, job.report):
            items.append(_case(case, job, targets, call["Subject"]))
        return _Plan(tuple(items), targets, what_id, link_target, (lookup,) if lookup else ())

    def describe_write(self, job: DeliveryJob) -> list[dict[str, Any]]:
        """The requests `write` would send for `job` on a first attempt, with their exact
        bodies. Writes nothing; may read the org's Task values, the Task's field lengths (when
        the mapping writes fields of unknown length) and, for ``what_rule: open_opportunity``,
        the account's open Opportunity."""
        plan = self._plan(job, Journal())
        base = f"/services/data/v{self.client.version}/"
        ops: list[dict[str, Any]] = list(plan.lookups)
        for request in _requests(plan.items, self.options.external_id_field):
            ops.append({"op": request.method, "path": base + request.path, "body": request.body()})
        if any(item.key == "note" for item in plan.items) and plan.link_target:
            link = _link("<id of the ContentNote created above>", plan.link_target)
            ops.append({"op": link.method, "path": base + link.path, "body": link.body()})
        return ops

    # --- writing ----------------------------------------------------------------------------------

    def write(self, job: DeliveryJob, journal: Journal) -> WriteResult:
        """Log the call (see the package docstring); a retry creates only what is missing."""
        plan = self._plan(job, journal)
        if journal.get(_PENDING):
            self._reconcile(plan, job, journal)
        missing = [item for item in plan.items if not journal.get(item.key)]
        for request in _requests(missing, self.options.external_id_field):
            self._send(request, journal)
        note_id = journal.get("note")
        if note_id and plan.link_target and not journal.get("note_link"):
            self._link_note(str(note_id), plan.link_target, journal)
        return WriteResult(refs=_refs(plan, journal))

    def _send(self, request: _Request, journal: Journal) -> None:
        """Send one collection request and record every created id; raise for failed records.

        Before a create, the lookup marker of each record and ``task_pending`` are recorded.
        """
        creating = request.method == "POST"
        if creating:
            markers = {item.key: item.marker for item in request.items if item.marker}
            if markers:
                recorded = journal.get(_PENDING_MARKERS)
                known = dict(recorded) if isinstance(recorded, Mapping) else {}
                journal.record(_PENDING_MARKERS, {**known, **markers})
            journal.record(_PENDING, True)
        body = request.body()
        results = self.client.call(
            f"{request.method} {request.path}",
            lambda sf: sf.restful(request.path, method=request.method, json=body),
        )
        if not isinstance(results, list) or len(results) != len(request.items):
            raise OutcomeUnknown(f"Salesforce {request.path}: unexpected answer")
        failures: list[tuple[_Item, Sequence[Mapping[str, Any]]]] = []
        for item, result in zip(request.items, results, strict=True):
            if isinstance(result, Mapping) and result.get("success") and result.get("id"):
                journal.record(item.key, str(result["id"]))
            else:
                errors = result.get("errors") if isinstance(result, Mapping) else None
                failures.append((item, errors or []))
        if creating:
            journal.record(_PENDING, False)
        if failures:
            raise _record_failures(failures, len(request.items))

    def _reconcile(self, plan: _Plan, job: DeliveryJob, journal: Journal) -> None:
        """After a create whose answer was lost: record what it created, looked up by the
        markers recorded before it was sent (see the module docstring).

        The note and case lookups (``LIKE '%(sipgate call <id>)'``) are bounded by
        ``CreatedDate`` (indexed): nothing of this call was created before the call started
        (`_CREATED_SLACK` allows for clocks that disagree)."""
        recorded = journal.get(_PENDING_MARKERS)
        markers: Mapping[str, Any] = recorded if isinstance(recorded, Mapping) else {}

        def marker(item: _Item) -> str:
            return str(markers.get(item.key) or item.marker)

        open_items = [item for item in plan.items if not journal.get(item.key)]
        tasks = {marker(item).casefold(): item for item in open_items if item.sobject == "Task"}
        if tasks:
            quoted = ", ".join(_soql_string(marker(item)) for item in tasks.values())
            for row in self.client.query(
                _select("Id, CallObject", "Task", f"CallObject IN ({quoted})"),
                "Task lookup after unknown outcome",
            ):
                found = tasks.pop(str(row.get("CallObject") or "").casefold(), None)
                if found is not None:
                    journal.record(found.key, str(row["Id"]))
        since = (job.report.start_time - _CREATED_SLACK).astimezone(UTC)
        created = f"CreatedDate >= {since.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        for item in open_items:
            if item.key == "note":
                where, what = f"Title LIKE {_soql_ends_with(marker(item))}", "note lookup"
            elif item.key == "case":
                where, what = f"Subject LIKE {_soql_ends_with(marker(item))}", "case lookup"
            else:
                continue
            rows = self.client.query(
                _select(
                    "Id", item.sobject, f"{where} AND {created}", "ORDER BY CreatedDate LIMIT 1"
                ),
                f"{what} after unknown outcome",
            )
            if rows:
                journal.record(item.key, str(rows[0]["Id"]))
        journal.record(_PENDING, False)

    def _link_note(self, note_id: str, target: str, journal: Journal) -> None:
        if journal.get(_LINK_PENDING):
            rows = self.client.query(
                _select(
                    "Id",
                    "ContentDocumentLink",
                    f"ContentDocumentId = {_soql_string(note_id)} "
                    f"AND LinkedEntityId = {_soql_string(target)}",
                ),
                "note link lookup after unknown outcome",
            )
            if rows:
                journal.record("note_link", str(rows[0]["Id"]))
                journal.record(_LINK_PENDING, False)
                return
        journal.record(_LINK_PENDING, True)
        self._send(_link(note_id, target), journal)
        journal.record(_LINK_PENDING, False)


def _refs(plan: _Plan, journal: Journal) -> dict[str, Any]:
    """The ids `write` reports: the call Task, the follow-ups, note, link, case and WhatId."""
    refs: dict[str, Any] = {
        "task": journal.get("task"),
        "follow_ups": [journal.get(i.key) for i in plan.items if i.key.startswith("follow_up")],
    }
    keys = {item.key for item in plan.items}
    if "note" in keys:
        refs["note"] = journal.get("note")
        refs["note_link"] = journal.get("note_link")
    if "case" in keys:
        refs["case"] = journal.get("case")
    if plan.what_id:
        refs["what_id"] = plan.what_id
    return refs
