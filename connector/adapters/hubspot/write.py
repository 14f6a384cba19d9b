"""Writing a delivery (``write``): the call, its tasks, note and ticket, each at most once per
call id, recorded in the delivery's `Journal` (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.adapters.base import (
    AdapterError,
    DeliveryJob,
    Journal,
    PermanentError,
    RetryableError,
    WriteResult,
)
from connector.adapters.hubspot.errors import _OutcomeUnknown, _Rejected
from connector.adapters.hubspot.pending import PendingMixin
from connector.adapters.hubspot.records import _CATEGORY, RecordsMixin, _Create
from connector.adapters.hubspot.search import _RecordCache

_CLOSED_STAGES = frozenset({"closedwon", "closedlost"})


class WriteMixin(RecordsMixin, PendingMixin):
    """`write` of the HubSpot adapter."""

    cache: _RecordCache

    def write(self, job: DeliveryJob, journal: Journal) -> WriteResult:
        """Log the call, then its tasks, note and ticket; each step at most once per call id.

        The call's properties are `job.fields` plus the ones the adapter owns (those win on a
        clash). Refs name every object written; the journal also keeps ``<step>_pending``
        (epoch seconds of the last create sent) for the lookup after an unknown outcome.
        """
        call_id = journal.get("call")
        if call_id is None:
            call_id = self._write_call(job, journal)
        elif self.unique_call_property and not journal.get("call_associated"):
            self._associate(str(call_id), self._call_create(job, self._deal(job, journal)), journal)
        refs: dict[str, Any] = {"call": str(call_id)}
        tasks = self._task_creates(job)
        if tasks:
            refs["tasks"] = self._write_tasks(tasks, journal)
        note = self._note_create(job)
        if note is not None:
            refs["note"] = self._write_single("note", note, journal)
        ticket = self._ticket_create(job)
        if ticket is not None:
            refs["ticket"] = self._write_single("ticket", ticket, journal)
        return WriteResult(refs=refs)

    def _deal(self, job: DeliveryJob, journal: Journal) -> str | None:
        """The deal ``deal_rule`` picks (looked up once per delivery), or None."""
        contacts = self._contacts(job)
        if self.deal_rule != "most_recent_open" or not contacts:
            return None
        recorded = journal.get("deal")
        if recorded is not None:
            return str(recorded) or None
        response = self._send(
            "search",
            "looking up open deals",
            self._search.do_search,
            "deals",
            self._deal_search_body(contacts[0]),
        )
        deal_id = ""
        for result in response.results or ():
            props: Mapping[str, Any] = result.properties or {}
            closed = str(props.get("hs_is_closed") or "").lower() == "true"
            if not closed and str(props.get("dealstage") or "") not in _CLOSED_STAGES:
                deal_id = str(result.id)
                break
        journal.record("deal", deal_id)
        return deal_id or None

    def _write_call(self, job: DeliveryJob, journal: Journal) -> str:
        call = self._call_create(job, self._deal(job, journal))
        if self.unique_call_property:
            response = self._send(
                "general",
                "upserting the call",
                self._batch.upsert,
                "calls",
                {"inputs": [self._upsert_input(job, call)]},
            )
            results = list(response.results or ())
            if not results:
                raise PermanentError(
                    f"HubSpot did not upsert the call: {self._batch_errors(response)}"
                )
            call_id = str(results[0].id)
            journal.record("call", call_id)
            self._associate(call_id, call, journal)
            return call_id
        pending = journal.get("call_pending")
        if pending:
            found = self._find_call(job.report.call_id)
            if found is not None:
                journal.record("call", found)
                return found
            self._wait_for_index(float(pending), "call")
        try:
            created = self._send(
                "general",
                "creating the call",
                self._basic.create,
                "calls",
                call.body(),
                before_send=lambda: journal.record("call_pending", self.wall_clock()),
            )
        except _OutcomeUnknown:
            raise
        except _Rejected as exc:
            journal.record("call_pending", None)
            self._forget_stale_matches(job, exc)
            raise
        except AdapterError:
            journal.record("call_pending", None)
            raise
        call_id = str(created.id)
        journal.record("call", call_id)
        return call_id

    def _forget_stale_matches(self, job: DeliveryJob, exc: _Rejected) -> None:
        """A 400 for association targets that no longer exist: when they came from the cache,
        drop them and retry (the next attempt searches afresh)."""
        context = exc.info.get("context")
        invalid = isinstance(context, Mapping) and "INVALID_OBJECT_IDS" in context
        ids = [m.id for m in job.matches]
        if exc.status == 400 and invalid and self.cache.holds(ids):
            self.cache.forget(ids)
            raise RetryableError(
                "A cached HubSpot record no longer exists; searching again.", retry_after=1.0
            ) from exc

    def _associate(self, call_id: str, call: _Create, journal: Journal) -> None:
        """Associate an upserted call (idempotent PUTs), then record that it is done."""
        for link in call.links:
            self._send(
                "general",
                "associating the call",
                self._associations.create,
                "calls",
                call_id,
                link.to_type,
                link.to_id,
                [{"associationCategory": _CATEGORY, "associationTypeId": link.type_id}],
            )
        journal.record("call_associated", True)

    @staticmethod
    def _batch_errors(response: Any) -> str:
        errors = getattr(response, "errors", None) or []
        named = sorted({str(getattr(e, "category", "") or "error") for e in errors})
        return ", ".join(named) or "no results"

    def _write_tasks(self, tasks: list[_Create], journal: Journal) -> list[str]:
        recorded = journal.get("tasks")
        if recorded is not None:
            return [str(t) for t in recorded]
        pending = journal.get("tasks_pending")
        if pending:
            found = self._find_recent(tasks, float(pending))
            if found:
                journal.record("tasks", found)
                return found
            self._wait_for_index(float(pending), "tasks")
        try:
            response = self._send(
                "general",
                "creating the follow-up tasks",
                self._batch.create,
                "tasks",
                {"inputs": [t.body() for t in tasks]},
                before_send=lambda: journal.record("tasks_pending", self.wall_clock()),
            )
        except _OutcomeUnknown:
            raise
        except AdapterError:
            journal.record("tasks_pending", None)
            raise
        ids = [str(r.id) for r in response.results or ()]
        journal.record("tasks", ids)
        if len(ids) < len(tasks):
            raise PermanentError(
                f"HubSpot created {len(ids)} of {len(tasks)} follow-up tasks: "
                f"{self._batch_errors(response)}."
            )
        return ids

    def _write_single(self, step: str, create: _Create, journal: Journal) -> str:
        recorded = journal.get(step)
        if recorded is not None:
            return str(recorded)
        pending = journal.get(f"{step}_pending")
        if pending:
            found = self._find_recent([create], float(pending))
            if found:
                journal.record(step, found[0])
                return found[0]
            self._wait_for_index(float(pending), step)
        try:
            created = self._send(
                "general",
                f"creating the {step}",
                self._basic.create,
                create.object_type,
                create.body(),
                before_send=lambda: journal.record(f"{step}_pending", self.wall_clock()),
            )
        except _OutcomeUnknown:
            raise
        except AdapterError:
            journal.record(f"{step}_pending", None)
            raise
        object_id = str(created.id)
        journal.record(step, object_id)
        return object_id
