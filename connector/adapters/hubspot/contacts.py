"""Contacts for unknown callers (``create_record``): at most one contact per number, kept in the
shared memo while HubSpot's search index cannot show the new contact yet."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

from connector.adapters.base import AdapterError, CrmRecord, Journal, PermanentError, RetryableError
from connector.adapters.hubspot.errors import _OutcomeUnknown, _Rejected
from connector.adapters.hubspot.pending import PENDING_SETTLE_SECONDS, PendingMixin, _Marker
from connector.adapters.hubspot.sdk import _object_id, _results
from connector.adapters.hubspot.search import _CONTACT_PROPERTIES, SearchMixin
from connector.adapters.hubspot.values import _properties
from connector.logs import mask_number
from connector.phone import PhoneNumber, same_number

#: The package's logger (not this module's): log lines keep the name they had before the
#: adapter was split into modules.
log = logging.getLogger("connector.adapters.hubspot")


class ContactsMixin(SearchMixin, PendingMixin):
    """`create_record` of the HubSpot adapter."""

    def create_record(
        self, object_type: str, number: PhoneNumber, fields: Mapping[str, Any], journal: Journal
    ) -> CrmRecord:
        """A contact with ``phone`` = +E.164 (plus `fields`) for an unknown caller.

        At most one contact per number: the journal, then the shared memo ("number → contact
        id", or "being created since …") are consulted first; while another worker creates
        the contact this raises `RetryableError` with a short ``retry_after``.
        """
        if object_type not in self.creatable_objects:
            raise PermanentError(f"HubSpot targets can create contacts only, not {object_type}.")
        recorded = journal.get("contact")
        if recorded:
            return self._new_contact(str(recorded), number)
        key = "hubspot:contact:" + hashlib.sha256(number.e164.encode()).hexdigest()[:32]
        stamp = f"creating:{self.wall_clock():.3f}"
        if not self.memo.reserve(key, stamp):
            existing, judged = self._contact_in_memo(key, number, journal)
            if existing is not None:
                journal.record("contact", existing.id)
                return existing
            # Nobody finished this contact: take over, unless another delivery just did.
            if not self.memo.replace(key, judged or None, stamp):
                raise RetryableError(
                    "Another delivery took over creating the HubSpot contact for this caller.",
                    retry_after=5.0,
                )
            previous: str | None = judged or None
        else:
            previous = None
        body = {"properties": {**_properties(fields), "phone": number.e164}, "associations": []}
        marker = _Marker(journal, "contact_pending", self.wall_clock)
        operation = "creating a contact"
        try:
            created = self._send(
                "general",
                operation,
                self._basic.create,
                "contacts",
                body,
                before_send=marker.set,
            )
            contact_id = _object_id(created, operation)
        except _OutcomeUnknown:
            raise  # the memo keeps "creating": the retry looks for the contact first
        except AdapterError:
            # Nothing was created. Let the next delivery try; an earlier attempt whose outcome
            # is unknown ("creating:…" before this one) keeps its memo entry and its marker.
            if previous is not None and previous.startswith("creating:"):
                self.memo.replace(key, stamp, previous)
            else:
                self.memo.delete(key)
            marker.undo()
            raise
        self.memo.set(key, contact_id)
        journal.record("contact", contact_id)
        record = self._new_contact(contact_id, number)
        self.cache.put(("contact", number.e164), [record])
        log.info("%s: created contact %s for %s", self.name, contact_id, mask_number(number.e164))
        return record

    def _contact_in_memo(
        self, key: str, number: PhoneNumber, journal: Journal
    ) -> tuple[CrmRecord | None, str]:
        """The contact the memo knows for this number (None when this delivery should
        (re)create it) and the memo value that judgement rests on; raises `RetryableError`
        while another delivery is creating it."""
        value = self.memo.get(key) or ""
        if value and not value.startswith("creating:"):
            existing = self._existing_contact(value)  # None: deleted or merged in HubSpot
            if existing is not None and not self._holds(existing, number):
                log.info(
                    "%s: contact %s no longer has the number %s: creating another",
                    self.name,
                    existing.id,
                    mask_number(number.e164),
                )
                existing = None
            return existing, value
        if not value:
            return None, value
        try:
            since = float(value.removeprefix("creating:"))
        except ValueError:
            since = 0.0
        age = self.wall_clock() - since
        ours = journal.get("contact_pending") is not None  # our last attempt's outcome is unknown
        if age < PENDING_SETTLE_SECONDS and not ours:
            raise RetryableError(
                "Another delivery is creating the HubSpot contact for this caller.",
                retry_after=max(2.0, min(10.0, PENDING_SETTLE_SECONDS - age)),
            )
        found = self._find_created_contact(number)
        if found is not None:
            self.memo.set(key, found.id)
            return found, found.id
        self._wait_for_index(since, "contact")
        return None, value

    @staticmethod
    def _holds(record: CrmRecord, number: PhoneNumber) -> bool:
        """Whether one of the contact's numbers (``phone``, ``mobilephone``, HubSpot's E.164
        readings of them) is `number`; spellings without country code are read as numbers of
        the caller's country."""
        return any(same_number(stored, number, number.region or "") for stored in record.phones)

    @staticmethod
    def _new_contact(contact_id: str, number: PhoneNumber) -> CrmRecord:
        return CrmRecord("contact", contact_id, phones=(number.e164,), extra={"created": True})

    def _existing_contact(self, contact_id: str) -> CrmRecord | None:
        """The contact the memo names, read by id (no search lag) with its numbers (``phone``,
        ``mobilephone``, HubSpot's calculated ones); None if it is gone."""
        operation = "reading a contact"
        try:
            found = self._send(
                "general",
                operation,
                self._basic.get_by_id,
                "contacts",
                contact_id,
                properties=list(_CONTACT_PROPERTIES),
            )
        except _Rejected as exc:
            if exc.status == 404:
                return None
            raise
        _object_id(found, operation)  # an answer naming no contact is no answer
        return self._record("contact", found)

    def _find_created_contact(self, number: PhoneNumber) -> CrmRecord | None:
        body = {
            "filterGroups": [
                {"filters": [{"propertyName": "phone", "operator": "EQ", "value": number.e164}]}
            ],
            "properties": list(_CONTACT_PROPERTIES),
            "sorts": [{"propertyName": "createdate", "direction": "ASCENDING"}],
            "limit": 1,
        }
        operation = "looking up a new contact"
        response = self._send("search", operation, self._search.do_search, "contacts", body)
        results = _results(response, operation)
        return self._record("contact", results[0]) if results else None
