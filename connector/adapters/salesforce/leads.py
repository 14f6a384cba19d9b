"""Leads for unknown callers (`create_record`): at most one per number, also across deliveries.

``Phone`` is the international format, ``LastName``/``Company`` come from ``lead_defaults``; with
``match_field`` (and Leads searched) the Lead also gets the caller's +E.164 there, so the next
call finds it by SOQL at once. The new record's mapped text fields are cut to their lengths (the
standard ones known, others read from describe once, see `lengths`).

The shared `Memo` remembers "this number (hashed E.164) got lead X" for `LEAD_MEMO_SECONDS` and
"a delivery is creating it" (a claim taken over with compare-and-set when its worker died), so a
repeat caller gets the same lead while SOSL cannot see it yet. A remembered lead is reused only
after one query showed it still exists and is not converted; otherwise it is forgotten and the
caller is treated as new.

A delivery whose create had an unknown outcome (and one taking over a dead worker's claim)
first looks the lead up by SOQL, by a value the adapter wrote itself: the +E.164 in
``match_field`` when the Lead carries it, else the exact ``Phone`` text it sent. Limits of the
``Phone`` lookup: it misses the lead when something changed its ``Phone`` in between (a user, a
flow or trigger that reformats numbers), and it may adopt another open lead whose ``Phone`` is
the very same text (the same caller, so nothing is lost); ``Phone`` is not indexed, so the query
scans the org's leads.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Mapping
from typing import Any, Final

from connector.adapters.base import CrmRecord, Journal, PermanentError, RetryableError
from connector.adapters.salesforce.lengths import _FieldLengths
from connector.adapters.salesforce.records import _OWN_FIELDS, LEAD_FIELD_LIMITS, _json_value
from connector.adapters.salesforce.search import _Search
from connector.adapters.salesforce.soql import _select, _soql_string
from connector.logs import mask_number
from connector.phone import PhoneNumber
from connector.text import truncate_to

#: The package's logger (named as before the package was split into modules).
log = logging.getLogger(__package__)

#: A remembered "this number got lead X" is trusted this long (SOSL has caught up by then).
LEAD_MEMO_SECONDS: Final = 24 * 3600.0
#: A "someone is creating the lead for this number" claim older than this is taken over.
_LEAD_CLAIM_STALE_SECONDS: Final = 600.0


def _memo_key(number: PhoneNumber) -> str:
    """Memo key for "the lead of this number" (hashed: no phone numbers in the ledger's keys)."""
    return "lead:" + hashlib.sha256(number.e164.encode("utf-8")).hexdigest()[:32]


class _Leads(_Search, _FieldLengths):
    """`create_record` for ``on_no_match``: Leads only."""

    def create_record(
        self, object_type: str, number: PhoneNumber, fields: Mapping[str, Any], journal: Journal
    ) -> CrmRecord:
        """Create a Lead for an unknown caller, at most one per number.

        ``Phone`` is the international format (and ``match_field`` the +E.164, see
        `_marks_leads`), ``LastName``/``Company`` come from ``lead_defaults`` unless `fields`
        sets them. A repeat call of the same number gets the same Lead although SOSL cannot see
        it yet: the shared memo remembers it for `LEAD_MEMO_SECONDS` (and it is reused while it
        exists unconverted), and a delivery that finds another one creating it retries later.
        """
        if object_type != "lead":
            raise ValueError(f"Salesforce targets create leads, not {object_type!r}.")
        values = self._lead_values(number, fields)
        recorded = journal.get("lead")
        if recorded:
            return self._lead(str(recorded), values)
        key = _memo_key(number)
        token = str(journal.get("lead_claim") or secrets.token_hex(8))
        known, look_first = self._claim_lead(key, token)
        if known is None and (look_first or journal.get("lead_claim")):
            known = self._find_lead(number)
        if known is not None:
            self.memo.set(key, f"{known}|{time.time()}")
            journal.record("lead", known)
            return self._lead(known, values)
        journal.record("lead_claim", token)
        try:
            result = self._call(
                "create Lead", lambda sf: sf.restful("sobjects/Lead/", method="POST", json=values)
            )
        except PermanentError:
            self.memo.delete(key)  # nothing was created: the next call of this number may try
            raise
        lead_id = str(result["id"]) if isinstance(result, Mapping) and result.get("id") else ""
        if not lead_id:
            raise RetryableError("Salesforce create Lead: answer without id (outcome unknown)")
        self.memo.set(key, f"{lead_id}|{time.time()}")
        journal.record("lead", lead_id)
        log.info("Salesforce target %r: lead created for %s", self.name, mask_number(number.e164))
        return self._lead(lead_id, values)

    @property
    def _marks_leads(self) -> bool:
        """Whether created Leads get the caller's +E.164 in ``match_field``: with
        ``match_field`` when Leads are searched (then `check` verified the field on Lead)."""
        return bool(self.options["match_field"]) and "lead" in self._object_types(())

    def _lead_values(self, number: PhoneNumber, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The new Lead's fields: defaults, the mapping's `fields` (text cut to each field's
        length), ``Phone`` and, with `_marks_leads`, ``match_field``."""
        defaults = self.options["lead_defaults"]
        values: dict[str, Any] = {
            "LastName": defaults["last_name"],
            "Company": defaults["company"],
        }
        match_field = self.options["match_field"] if self._marks_leads else None
        own = {"phone", (match_field or "").lower()}
        given = {
            name: value
            for name, value in fields.items()
            if name.lower() not in _OWN_FIELDS
            and name.lower() not in own
            and value not in (None, "")
        }
        lengths = self._field_lengths("Lead", given, LEAD_FIELD_LIMITS)
        for name, value in given.items():
            converted = _json_value(value)
            limit = LEAD_FIELD_LIMITS.get(name.lower()) or lengths.get(name.lower())
            if limit and isinstance(converted, str):
                converted = truncate_to(converted, limit)
            values[name] = converted
        values["Phone"] = number.international()
        if match_field:
            values[match_field] = number.e164
        return values

    @staticmethod
    def _lead(lead_id: str, values: Mapping[str, Any]) -> CrmRecord:
        name = " ".join(str(values[k]) for k in ("FirstName", "LastName") if values.get(k))
        return CrmRecord("lead", lead_id, phones=(str(values["Phone"]),), name=name)

    def _claim_lead(self, key: str, token: str) -> tuple[str | None, bool]:
        """(lead id to reuse, None) or (None, look first?) when this delivery may create it.

        The memo holds ``<lead id>|<time>`` or ``pending|<time>|<claim token>``; a fresh claim of
        another delivery means "retry later", a stale one (its worker died) or our own earlier
        claim (whose outcome is unknown) is taken over after looking for the lead by SOQL.
        """
        now = time.time()
        claim = f"pending|{now}|{token}"
        if self.memo.reserve(key, claim):
            return None, False
        current = self.memo.get(key)
        state, stamp, owner = [*(current or "").split("|"), "", "", ""][:3]
        try:
            age = now - float(stamp)
        except ValueError:
            age = float("inf")
        if state and state != "pending" and age < LEAD_MEMO_SECONDS:
            if self._lead_is_open(state):
                return state, False
            log.info(
                "Salesforce target %r: the remembered lead %s was converted or deleted",
                self.name,
                state,
            )
            if not self.memo.replace(key, current, claim):  # another delivery got there first
                raise RetryableError(
                    "Another delivery is creating the lead for this caller right now",
                    retry_after=15,
                )
            return None, True
        busy = RetryableError(
            "Another delivery is creating the lead for this caller right now", retry_after=15
        )
        if state == "pending" and owner != token and age < _LEAD_CLAIM_STALE_SECONDS:
            raise busy
        if not self.memo.replace(key, current, claim):  # another delivery took it over first
            raise busy
        return None, True

    def _lead_is_open(self, lead_id: str) -> bool:
        """Whether the Lead `lead_id` still exists and is not converted (one query)."""
        rows = self._query(
            _select(
                "Id", "Lead", f"Id = {_soql_string(lead_id)} AND IsConverted = false", "LIMIT 1"
            ),
            "remembered lead check",
        )
        return bool(rows)

    def _find_lead(self, number: PhoneNumber) -> str | None:
        """An open Lead holding what `create_record` writes for `number`: the +E.164 in
        ``match_field`` (with `_marks_leads`), else exactly the ``Phone`` text (SOQL: no search
        index lag; see the module docstring for the limits)."""
        if self._marks_leads:
            condition = f"{self.options['match_field']} = {_soql_string(number.e164)}"
        else:
            condition = f"Phone = {_soql_string(number.international())}"
        rows = self._query(
            _select(
                "Id",
                "Lead",
                f"{condition} AND IsConverted = false",
                "ORDER BY CreatedDate DESC LIMIT 1",
            ),
            "lead lookup",
        )
        return str(rows[0]["Id"]) if rows else None
