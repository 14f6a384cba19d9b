"""Leads for unknown callers (`create_record`): at most one per number, also across deliveries.

``Phone`` is the international format, ``LastName``/``Company`` come from ``lead_defaults``; with
``match_field`` (and Leads searched) the Lead also gets the caller's +E.164 there, so the next
call finds it by SOQL at once. The new record's mapped text fields are cut to their lengths (the
standard ones known, others read from describe once, see `lengths`).

The kit's `CallerClaims` in the shared `Memo` remember "this number (hashed E.164) got lead X"
for `LEAD_MEMO_SECONDS` and "a delivery is creating it" (a claim taken over with compare-and-set
when its worker died), so a repeat caller gets the same lead while SOSL cannot see it yet. A
remembered lead is reused only after one query showed it still exists and is not converted;
otherwise it is forgotten and the caller is treated as new.

A delivery whose create had an unknown outcome (and one taking over a dead worker's claim)
first looks the lead up by SOQL, by a value the adapter wrote itself: the +E.164 in
``match_field`` when the Lead carries it, else the exact ``Phone`` text it sent. Limits of the
``Phone`` lookup: it misses the lead when something changed its ``Phone`` in between (a user, a
flow or trigger that reformats numbers), and it may adopt another open lead whose ``Phone`` is
the very same text (the same caller, so nothing is lost); ``Phone`` is not indexed, so the query
scans the org's leads.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from connector.adapters import (
    CallerClaims,
    CrmRecord,
    Journal,
    Memo,
    OutcomeUnknown,
    PhoneNumber,
    truncate_to,
)
from connector.adapters.salesforce.client import SalesforceClient
from connector.adapters.salesforce.lengths import FieldLengths
from connector.adapters.salesforce.options import SalesforceOptions
from connector.adapters.salesforce.records import _OWN_FIELDS, LEAD_FIELD_LIMITS, _json_value
from connector.adapters.salesforce.search import SalesforceSearcher
from connector.adapters.salesforce.soql import _select, _soql_string
from connector.logs import mask_number

#: The package's logger: every module of the adapter logs under it.
log = logging.getLogger(__package__)

#: A remembered "this number got lead X" is trusted this long (SOSL has caught up by then).
LEAD_MEMO_SECONDS: Final = 24 * 3600.0
#: A "someone is creating the lead for this number" claim older than this is taken over.
_LEAD_CLAIM_STALE_SECONDS: Final = 600.0


class SalesforceLeads:
    """`create` for ``on_no_match: create_lead``: Leads for unknown callers, one per number."""

    def __init__(
        self,
        client: SalesforceClient,
        searcher: SalesforceSearcher,
        lengths: FieldLengths,
        options: SalesforceOptions,
        memo: Memo,
    ) -> None:
        self.client = client
        self.searcher = searcher
        self.lengths = lengths
        self.options = options
        self.claims = self.claims_in(memo)

    @staticmethod
    def claims_in(memo: Memo) -> CallerClaims:
        """The new-caller claims kept in `memo` (the target's shared memo)."""
        return CallerClaims(
            memo,
            "lead",
            remember_seconds=LEAD_MEMO_SECONDS,
            stale_seconds=_LEAD_CLAIM_STALE_SECONDS,
            busy_retry_seconds=15.0,
        )

    def create(self, number: PhoneNumber, fields: Mapping[str, Any], journal: Journal) -> CrmRecord:
        """Create a Lead for an unknown caller, at most one per number.

        ``Phone`` is the international format (and ``match_field`` the +E.164, see
        `_marks_leads`), ``LastName``/``Company`` come from ``lead_defaults`` unless `fields`
        sets them. A repeat call of the same number gets the same Lead although SOSL cannot see
        it yet: the claims remember it for `LEAD_MEMO_SECONDS` (and it is reused while it exists
        unconverted), and a delivery that finds another one creating it retries later.
        """
        values = self._lead_values(number, fields)

        def create() -> str:
            result = self.client.call(
                "create Lead", lambda sf: sf.restful("sobjects/Lead/", method="POST", json=values)
            )
            lead_id = str(result["id"]) if isinstance(result, Mapping) and result.get("id") else ""
            if not lead_id:
                raise OutcomeUnknown("Salesforce create Lead: answer without id")
            log.info(
                "Salesforce target %r: lead created for %s",
                self.client.name,
                mask_number(number.e164),
            )
            return lead_id

        lead_id = self.claims.record_for(
            number, journal, create, lambda: self._find_lead(number), self._lead_is_open
        )
        return self._lead(lead_id, values)

    @property
    def _marks_leads(self) -> bool:
        """Whether created Leads get the caller's +E.164 in ``match_field``: with
        ``match_field`` when Leads are searched (then `check` verified the field on Lead)."""
        return bool(self.options.match_field) and "lead" in self.searcher.object_types(())

    def _lead_values(self, number: PhoneNumber, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The new Lead's fields: defaults, the mapping's `fields` (text cut to each field's
        length), ``Phone`` and, with `_marks_leads`, ``match_field``."""
        defaults = self.options.lead_defaults
        values: dict[str, Any] = {"LastName": defaults.last_name, "Company": defaults.company}
        match_field = self.options.match_field if self._marks_leads else None
        own = {"phone", (match_field or "").lower()}
        given = {
            name: value
            for name, value in fields.items()
            if name.lower() not in _OWN_FIELDS
            and name.lower() not in own
            and value not in (None, "")
        }
        lengths = self.lengths.of("Lead", given, LEAD_FIELD_LIMITS)
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

    def _lead_is_open(self, lead_id: str) -> bool:
        """Whether the Lead `lead_id` still exists and is not converted (one query)."""
        rows = self.client.query(
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
            condition = f"{self.options.match_field} = {_soql_string(number.e164)}"
        else:
            condition = f"Phone = {_soql_string(number.international())}"
        rows = self.client.query(
            _select(
                "Id",
                "Lead",
                f"{condition} AND IsConverted = false",
                "ORDER BY CreatedDate DESC LIMIT 1",
            ),
            "lead lookup",
        )
        return str(rows[0]["Id"]) if rows else None
