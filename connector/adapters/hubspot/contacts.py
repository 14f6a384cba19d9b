"""Contacts for unknown callers (``create_record``): at most one contact per number, kept in the
shared memo while HubSpot's search index cannot show the new contact yet."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

from connector.adapters.base import AdapterError, CrmRecord, Journal, PermanentError, RetryableError
from connector.adapters.hubspot.errors import _OutcomeUnknown, _Rejected
from connector.adapters.hubspot.pending import PENDING_SETTLE_SECONDS, PendingMixin
from connector.adapters.hubspot.search import _CONTACT_PROPERTIES, SearchMixin
from connector.adapters.hubspot.values import _properties
from connector.logs import mask_number
from connector.phone import PhoneNumber

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
        body = {"properties": {**_properties(fields), "phone": number.e164}, "associations": []}
        try:
            created = self._send(
                "general",
                "creating a contact",
                self._basic.create,
                "contacts",
                body,
                before_send=lambda: journal.record("contact_pending", self.wall_clock()),
            )
        except _OutcomeUnknown:
            raise  # the memo keeps "creating": the retry looks for the contact first
        except AdapterError:
            self.memo.delete(key)  # nothing was created; let the next delivery try
            journal.record("contact_pending", None)
            raise
        contact_id = str(created.id)
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
            return self._existing_contact(value), value  # None: deleted or merged in HubSpot
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
    def _new_contact(contact_id: str, number: PhoneNumber) -> CrmRecord:
        return CrmRecord("contact", contact_id, phones=(number.e164,), extra={"created": True})

    def _existing_contact(self, contact_id: str) -> CrmRecord | None:
        """The contact the memo names, read by id (no search lag); None if it is gone."""
        try:
            found = self._send(
                "general",
                "reading a contact",
                self._basic.get_by_id,
                "contacts",
                contact_id,
                properties=list(_CONTACT_PROPERTIES),
            )
        except _Rejected as exc:
            if exc.status == 404:
                return None
            raise
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
        response = self._send(
            "search", "looking up a new contact", self._search.do_search, "contacts", body
        )
        results = list(response.results or ())
        return self._record("contact", results[0]) if results else None
