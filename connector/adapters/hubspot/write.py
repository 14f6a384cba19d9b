"""The HubSpot writer: the call, its tasks, note and ticket, each at most once per call id and
recorded in the delivery's `Journal`, and contacts for new callers (see the package docstring).

Journal keys of one delivery: ``call`` (id) and ``call.pending`` (epoch s of a create with
unknown outcome, the kit's `create_once`), ``call_associated`` (upsert mode), ``deal``,
``contact`` with ``contact.claim``/``contact.pending`` (the kit's `CallerClaims`); per create
step (``tasks``, or ``tasks_1``, ``tasks_2``… when there are more than 100 tasks, then ``tasks``
with all ids; ``note``; ``ticket``): ``<step>`` (the ids), ``<step>_pending`` (``{"at": epoch
s, "sent": [fingerprint or null per object]}``) and ``<step>_known`` (ids found of a partly
found batch).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from connector.adapters import (
    AdapterError,
    CallerClaims,
    CrmRecord,
    DeliveryJob,
    Journal,
    Memo,
    OutcomeUnknown,
    PermanentError,
    PhoneNumber,
    Rejected,
    RetryableError,
    WriteResult,
    create_once,
    same_number,
)
from connector.adapters.hubspot.client import HubSpotClient, _object_id, _results
from connector.adapters.hubspot.pending import (
    PENDING_SETTLE_SECONDS,
    _fingerprint,
    _Marker,
    _pending_parts,
    call_lookup_body,
    match_sent,
    sent_lookup_body,
    wait_for_index,
)
from connector.adapters.hubspot.records import _CATEGORY, CallRecords, _Create
from connector.adapters.hubspot.search import HubSpotSearcher
from connector.adapters.hubspot.values import _properties
from connector.logs import mask_number

log = logging.getLogger("connector.adapters.hubspot")

_CLOSED_STAGES = frozenset({"closedwon", "closedlost"})

#: What each kind of object is called in messages.
_LABELS = {"tasks": "follow-up tasks", "notes": "note", "tickets": "ticket"}

#: Sends creates (calling `before_send` right before the request goes out); answers the new
#: ids and, when HubSpot created fewer than asked, what it said about the others.
_Sender = Callable[[Sequence[_Create], Callable[[], None]], tuple[list[str], str]]


class HubSpotWriter:
    """Writes of the HubSpot adapter through `client`: `write` and `create_contact`.

    `records` builds the bodies, `searcher` finds what a lost attempt created (and keeps the
    cache a stale association is dropped from); `wall_clock` gives epoch seconds.
    """

    def __init__(
        self,
        client: HubSpotClient,
        searcher: HubSpotSearcher,
        records: CallRecords,
        wall_clock: Callable[[], float],
    ) -> None:
        self.client = client
        self.searcher = searcher
        self.records = records
        self.wall_clock = wall_clock
        self.claims = self.claims_in(client.memo)

    def claims_in(self, memo: Memo) -> CallerClaims:
        """The new-caller claims kept in `memo` (the target's shared memo)."""
        return CallerClaims(
            memo,
            "contact",
            stale_seconds=PENDING_SETTLE_SECONDS,
            busy_retry_seconds=5.0,
            settle_seconds=PENDING_SETTLE_SECONDS,
            clock=self.wall_clock,
        )

    def write(self, job: DeliveryJob, journal: Journal) -> WriteResult:
        """Log the call, then its tasks, note and ticket; each step at most once per call id.

        The call's properties are `job.fields` plus the ones the adapter owns (those win on a
        clash). Refs name every object written; the journal also keeps ``<step>_pending``
        (epoch seconds of the last create sent) for the lookup after an unknown outcome.
        """
        call_id = journal.get("call")
        if call_id is None:
            call_id = self._write_call(job, journal)
        elif self.records.options.unique_call_property and not journal.get("call_associated"):
            self._associate(
                str(call_id), self.records.call_create(job, self._deal(job, journal)), journal
            )
        refs: dict[str, Any] = {"call": str(call_id)}
        tasks = self.records.task_creates(job)
        if tasks:
            refs["tasks"] = self._write_tasks(tasks, journal)
        note = self.records.note_create(job)
        if note is not None:
            [refs["note"]] = self._write_creates("note", [note], journal, self._create_one)
        ticket = self.records.ticket_create(job)
        if ticket is not None:
            [refs["ticket"]] = self._write_creates("ticket", [ticket], journal, self._create_one)
        return WriteResult(refs=refs)

    def _deal(self, job: DeliveryJob, journal: Journal) -> str | None:
        """The deal ``deal_rule`` picks (looked up once per delivery), or None."""
        contacts = self.records.contacts(job)
        if self.records.options.deal_rule != "most_recent_open" or not contacts:
            return None
        recorded = journal.get("deal")
        if recorded is not None:
            return str(recorded) or None
        operation = "looking up open deals"
        response = self.client.send(
            "search",
            operation,
            self.client.search.do_search,
            "deals",
            self.records.deal_search_body(contacts[0]),
        )
        deal_id = ""
        for result in _results(response, operation):
            props: Mapping[str, Any] = result.properties or {}
            closed = str(props.get("hs_is_closed") or "").lower() == "true"
            if not closed and str(props.get("dealstage") or "") not in _CLOSED_STAGES:
                deal_id = str(result.id)
                break
        journal.record("deal", deal_id)
        return deal_id or None

    def _write_call(self, job: DeliveryJob, journal: Journal) -> str:
        call = self.records.call_create(job, self._deal(job, journal))
        if self.records.options.unique_call_property:
            operation = "upserting the call"
            response = self.client.send(
                "general",
                operation,
                self.client.batch.upsert,
                "calls",
                {"inputs": [self.records.upsert_input(job, call)]},
            )
            results = _results(response, operation)
            if not results:
                raise PermanentError(
                    f"HubSpot did not upsert the call: {self._batch_errors(response)}"
                )
            call_id = _object_id(results[0], operation)
            journal.record("call", call_id)
            self._associate(call_id, call, journal)
            return call_id

        def create() -> str:
            operation = "creating the call"
            try:
                created = self.client.send(
                    "general", operation, self.client.basic.create, "calls", call.body()
                )
            except Rejected as exc:
                self._forget_stale_matches(job, exc, journal)
                raise
            return _object_id(created, operation)

        return create_once(
            journal,
            "call",
            create,
            lambda: self._find_call(job.report.call_id),
            settle_seconds=PENDING_SETTLE_SECONDS,
            clock=self.wall_clock,
        )

    def _find_call(self, sipgate_call_id: str) -> str | None:
        """The call HubSpot holds for the sipgate call id (the lookup after a lost create)."""
        operation = "looking up the call"
        body = call_lookup_body(self.records.options.call_id_property, sipgate_call_id)
        response = self.client.send(
            "search", operation, self.client.search.do_search, "calls", body
        )
        ids = [str(r.id) for r in _results(response, operation)]
        return ids[0] if ids else None

    def _forget_stale_matches(self, job: DeliveryJob, exc: Rejected, journal: Journal) -> None:
        """A 400 for association targets that no longer exist: when they came from the cache,
        drop them and the journal's match (and what was chosen by it: the deal, a contact
        this delivery created) and retry: the next attempt's planning searches afresh."""
        body = exc.body if isinstance(exc.body, Mapping) else {}
        context = body.get("context")
        invalid = isinstance(context, Mapping) and "INVALID_OBJECT_IDS" in context
        ids = [m.id for m in job.matches]
        if exc.status == 400 and invalid and self.searcher.cache.holds(ids):
            self.searcher.cache.forget(ids)
            journal.record("match", None)  # planning treats it as not recorded
            if journal.get("deal") is not None:
                journal.record("deal", None)
            if journal.get("contact") is not None and str(journal.get("contact")) in ids:
                journal.record("contact", None)
            raise RetryableError(
                "A cached HubSpot record no longer exists; searching again.", retry_after=1.0
            ) from exc

    def _associate(self, call_id: str, call: _Create, journal: Journal) -> None:
        """Associate an upserted call (idempotent PUTs), then record that it is done."""
        for link in call.links:
            self.client.send(
                "general",
                "associating the call",
                self.client.associations.create,
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
        """The tasks in batches of 100, each batch idempotent on its own (``tasks``, or
        ``tasks_1``, ``tasks_2``…), then all ids under ``tasks``."""
        recorded = journal.get("tasks")
        if recorded is not None:
            return [str(t) for t in recorded]
        batches = self.records.task_batches(tasks)
        if len(batches) == 1:
            return self._write_creates("tasks", tasks, journal, self._create_tasks)
        ids: list[str] = []
        for number, batch in enumerate(batches, start=1):
            ids += self._write_creates(f"tasks_{number}", batch, journal, self._create_tasks)
        journal.record("tasks", ids)
        return ids

    def _create_tasks(
        self, creates: Sequence[_Create], before_send: Callable[[], None]
    ) -> tuple[list[str], str]:
        operation = "creating the follow-up tasks"
        response = self.client.send(
            "general",
            operation,
            self.client.batch.create,
            "tasks",
            {"inputs": [t.body() for t in creates]},
            before_send=before_send,
        )
        ids = [_object_id(r, operation) for r in _results(response, operation)]
        return ids, self._batch_errors(response)

    def _create_one(
        self, creates: Sequence[_Create], before_send: Callable[[], None]
    ) -> tuple[list[str], str]:
        [create] = creates
        operation = f"creating the {_LABELS[create.object_type]}"
        created = self.client.send(
            "general",
            operation,
            self.client.basic.create,
            create.object_type,
            create.body(),
            before_send=before_send,
        )
        return [_object_id(created, operation)], ""

    def _write_creates(
        self, step: str, creates: Sequence[_Create], journal: Journal, send: _Sender
    ) -> list[str]:
        """Create `creates` (one request through `send`) unless ``<step>`` is recorded.

        After an attempt with unknown outcome (``<step>_pending``), the objects it sent are
        looked up by their fingerprints first. Only when all are found is the step done. When
        some or none are found, this waits (`RetryableError`) until the lookup can be trusted
        (`PENDING_SETTLE_SECONDS` after that attempt: HubSpot's search may not show all of them
        yet); then the found ones are kept (``<step>_known``) and only the missing ones are
        created.
        """
        recorded = journal.get(step)
        if recorded is not None:
            return [str(i) for i in recorded]
        label = _LABELS[creates[0].object_type]
        count = len(creates)
        stored = journal.get(f"{step}_known")
        known: list[str | None] = [
            str(k) if k else None for k in (list(stored) if stored else [])[:count]
        ]
        known += [None] * (count - len(known))
        pending = journal.get(f"{step}_pending")
        if pending:
            since, sent = _pending_parts(pending)
            wanted = (sent + [None] * count)[:count]
            for position, object_id in self._find_sent(creates, since, wanted, known).items():
                known[position] = object_id
            if all(known):
                found = [str(k) for k in known]
                journal.record(step, found)
                return found
            wait_for_index(since, self.wall_clock(), label)
            if any(known):
                journal.record(f"{step}_known", known)
        missing = [p for p, k in enumerate(known) if k is None]
        if not missing:  # found before, but not recorded as done
            done = [str(k) for k in known]
            journal.record(step, done)
            return done
        marker = _Marker(
            journal,
            f"{step}_pending",
            lambda: {
                "at": self.wall_clock(),
                "sent": [
                    _fingerprint(c.object_type, c.properties) if known[p] is None else None
                    for p, c in enumerate(creates)
                ],
            },
        )
        try:
            new_ids, problems = send([creates[p] for p in missing], marker.set)
        except OutcomeUnknown:
            raise
        except AdapterError:
            marker.undo()
            raise
        for position, object_id in zip(missing, new_ids, strict=False):
            known[position] = object_id
        ids = [k for k in known if k is not None]
        journal.record(step, ids)
        if len(new_ids) < len(missing):
            raise PermanentError(
                f"HubSpot created {len(new_ids)} of {len(missing)} {label}: {problems}."
            )
        return ids

    def _find_sent(
        self,
        creates: Sequence[_Create],
        since: float,
        wanted: Sequence[str | None],
        known: Sequence[str | None],
    ) -> dict[int, str]:
        """What a create with unknown outcome since `since` made, by position in `wanted`."""
        object_type = creates[0].object_type
        operation = f"looking up recent {object_type}"
        response = self.client.send(
            "search",
            operation,
            self.client.search.do_search,
            object_type,
            sent_lookup_body(creates, since),
        )
        return match_sent(object_type, _results(response, operation), wanted, known)

    def create_contact(
        self, number: PhoneNumber, fields: Mapping[str, Any], journal: Journal
    ) -> CrmRecord:
        """A contact with ``phone`` = +E.164 (plus `fields`) for an unknown caller, at most one
        per number across deliveries (the kit's `CallerClaims` in the target's memo): while
        another delivery creates it this raises `RetryableError` with a short ``retry_after``.
        A remembered contact is reused only while one of its numbers is still the caller's."""
        body = {"properties": {**_properties(fields), "phone": number.e164}, "associations": []}

        def create() -> str:
            operation = "creating a contact"
            created = self.client.send(
                "general", operation, self.client.basic.create, "contacts", body
            )
            contact_id = _object_id(created, operation)
            log.info("created contact %s for %s", contact_id, mask_number(number.e164))
            return contact_id

        def lookup() -> str | None:
            found = self.searcher.first_contact_with_phone(number)
            return found.id if found is not None else None

        def is_live(contact_id: str) -> bool:
            existing = self.searcher.read_contact(contact_id)  # None: deleted or merged
            return existing is not None and any(
                same_number(stored, number, number.region or "") for stored in existing.phones
            )

        contact_id = self.claims.record_for(number, journal, create, lookup, is_live)
        record = CrmRecord("contact", contact_id, phones=(number.e164,), extra={"created": True})
        self.searcher.cache.put(("contact", number.e164), [record])
        return record
