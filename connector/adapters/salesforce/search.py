"""Finding records: the caller's Contacts, Leads and Accounts by phone number, owners by e-mail.

`search_by_phone` sends ONE SOSL request over every spelling of the number; with
``match_field`` an exact SOQL match instead (one ``query`` for one object type, one
``/composite`` request for several). Hits become `CrmRecord` objects carrying every returned
phone value (all standard phone fields, and ``match_field``) for the matching policy's re-check.

Searched are the object types the policy's ``matching.objects`` names (passed by `from_config`;
without a policy: the ``search_objects`` option) that the ``search_objects`` option allows
(``person_account`` allows ``account`` and adds the person account fields); the others are left
out, and `check` says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from connector.adapters import CrmRecord, OwnerCache, PermanentError, RetryableError, name_words
from connector.adapters.salesforce.client import SalesforceClient
from connector.adapters.salesforce.errors import _status_error
from connector.adapters.salesforce.options import PolicyNeeds, SalesforceOptions
from connector.adapters.salesforce.soql import (
    _ALL_PHONE_FIELDS,
    _OBJECT_TYPES,
    _composite_queries,
    _match_queries,
    _select,
    _soql_string,
    build_name_sosl,
    build_sosl,
)
from connector.logs import mask_number
from connector.phone import PhoneNumber

#: The package's logger: every module of the adapter logs under it.
log = logging.getLogger(__package__)


#: Object types the searcher finds, most specific first.
SEARCHABLE_OBJECTS = ("contact", "lead", "account")


class SalesforceSearcher:
    """Reads of the Salesforce adapter: `search_by_phone`, `describe_search` and
    `resolve_owner` (the kit's `OwnerCache`, kept for the adapter's lifetime)."""

    def __init__(
        self, client: SalesforceClient, options: SalesforceOptions, needs: PolicyNeeds
    ) -> None:
        self.client = client
        self.options = options
        self.needs = needs
        self.owners = OwnerCache(self.find_owner, float("inf"))

    @property
    def _allowed_types(self) -> list[str]:
        """The object types the ``search_objects`` option allows (``person_account``: account)."""
        return list(
            dict.fromkeys(
                "account" if item == "person_account" else item for item in self.options.searched
            )
        )

    def wanted_types(self, object_types: Sequence[str]) -> list[str]:
        """`object_types`, else the policy's ``matching.objects``, else ``search_objects``."""
        wanted = list(object_types) or list(self.needs.matching_objects) or self._allowed_types
        unknown = [item for item in wanted if item not in SEARCHABLE_OBJECTS]
        if unknown:
            raise PermanentError(
                f"Salesforce cannot search {', '.join(unknown)} "
                f"(it searches {', '.join(SEARCHABLE_OBJECTS)})."
            )
        return list(dict.fromkeys(wanted))

    def object_types(self, object_types: Sequence[str]) -> list[str]:
        """The object types searched for `object_types` (see the module docstring): those of
        them the ``search_objects`` option allows, in the order given."""
        allowed = self._allowed_types
        return [item for item in self.wanted_types(object_types) if item in allowed]

    @property
    def person_accounts(self) -> bool:
        """Whether person accounts are searched (``person_account`` in ``search_objects``)."""
        return "person_account" in self.options.search_objects

    def describe_search(self, number: PhoneNumber, object_types: Sequence[str]) -> dict[str, Any]:
        """The request `search_by_phone` would send: the SOSL text, or the SOQL queries (and the
        ``/composite`` body when there are several) with ``match_field``."""
        types = self.object_types(object_types)
        match_field = self.options.match_field
        if not types:
            return {"request": None, "searched": []}
        if match_field:
            queries = _match_queries(
                number, types, match_field, person_accounts=self.person_accounts
            )
            if len(queries) == 1:
                return {"request": "GET query", "soql": next(iter(queries.values()))}
            return {
                "request": "POST composite",
                "soql": list(queries.values()),
                "body": _composite_queries(queries, self.client.version),
            }
        return {
            "request": "GET search",
            "sosl": build_sosl(number, types, person_accounts=self.person_accounts),
        }

    def search_by_phone(self, number: PhoneNumber, object_types: Sequence[str]) -> list[CrmRecord]:
        """Contacts, open Leads and Accounts whose phone fields may hold `number`, in one request.

        Empty `object_types` means the policy's ``matching.objects`` (else the ``search_objects``
        option); only the types ``search_objects`` allows are searched, none at all means no
        request and no hits. Hits are not re-checked here: ``phones`` carries the stored values
        for the matching policy.
        """
        types = self.object_types(object_types)
        log.debug("Salesforce search for %s in %s", mask_number(number.e164), types)
        if not types:
            return []
        match_field = self.options.match_field
        if not match_field:
            return self._sosl_records(
                build_sosl(number, types, person_accounts=self.person_accounts)
            )
        queries = _match_queries(number, types, match_field, person_accounts=self.person_accounts)
        if len(queries) == 1:
            rows = self.client.query(next(iter(queries.values())), "phone query")
        else:
            rows = self._composite_query_rows(queries)
        return [record for row in rows if (record := _record(row, match_field)) is not None]

    def search_by_name(self, name: str, object_types: Sequence[str]) -> list[CrmRecord]:
        """Contacts, open Leads and Accounts with a name word starting with each word of `name`
        (one SOSL request over ``NAME FIELDS``; the types as for `search_by_phone`). Only the
        words of `name` reach the query (`name_words`), each escaped: no words, no request."""
        types = self.object_types(object_types)
        words = name_words(name)
        if not types or not words:
            return []
        return self._sosl_records(
            build_name_sosl(words, types, person_accounts=self.person_accounts)
        )

    def _sosl_records(self, sosl: str) -> list[CrmRecord]:
        """The records a SOSL search finds."""
        result = self.client.call("search", lambda sf: sf.search(sosl))
        rows = result.get("searchRecords") if isinstance(result, Mapping) else None
        if rows is not None and not isinstance(rows, list):
            raise RetryableError("Salesforce search: unexpected answer")
        return [record for row in rows or [] if (record := _record(row, None)) is not None]

    def _composite_query_rows(self, queries: Mapping[str, str]) -> list[dict[str, Any]]:
        body = _composite_queries(queries, self.client.version)
        answer = self.client.call(
            "phone query", lambda sf: sf.restful("composite", method="POST", json=body)
        )
        responses = answer.get("compositeResponse") if isinstance(answer, Mapping) else None
        if not isinstance(responses, list):
            raise RetryableError("Salesforce phone query: unexpected /composite answer")
        rows: list[dict[str, Any]] = []
        for response in responses:
            status = response.get("httpStatusCode") if isinstance(response, Mapping) else None
            if isinstance(status, bool) or not isinstance(status, int):
                raise RetryableError("Salesforce phone query: unexpected /composite answer")
            sub_body = response.get("body")
            if status != 200 or not isinstance(sub_body, Mapping):
                raise _status_error(status, sub_body, "phone query", self.client.sf)
            records = sub_body.get("records") or []
            if not isinstance(records, list):
                raise RetryableError("Salesforce phone query: unexpected /composite answer")
            rows.extend(dict(row) for row in records if isinstance(row, Mapping))
        return rows

    def resolve_owner(self, email: str) -> str | None:
        """The id of the active Salesforce User with this e-mail address (cached), or ``None``."""
        return self.owners.resolve(email)

    def find_owner(self, email: str) -> str | None:
        """The id of the active User with this e-mail address, asked of the org (no cache)."""
        rows = self.client.query(
            _select(
                "Id",
                "User",
                f"Email = {_soql_string(email.strip().lower())} AND IsActive = true",
                "LIMIT 1",
            ),
            "owner lookup",
        )
        return str(rows[0]["Id"]) if rows else None


def _record(row: Any, match_field: str | None) -> CrmRecord | None:
    """The `CrmRecord` of a search or query result row (None for rows of other objects); its
    ``phones`` are the values of every returned phone field and of `match_field`."""
    if not isinstance(row, Mapping):
        return None
    attributes = row.get("attributes")
    sobject = attributes.get("type") if isinstance(attributes, Mapping) else None
    object_type = _OBJECT_TYPES.get(str(sobject))
    if object_type is None or not row.get("Id"):
        return None
    names = [*_ALL_PHONE_FIELDS, match_field or ""]
    phones = tuple(dict.fromkeys(str(row[name]) for name in names if name and row.get(name)))
    extra: dict[str, Any] = {}
    if object_type == "account" and row.get("PersonContactId"):
        extra["person_contact_id"] = row["PersonContactId"]
    return CrmRecord(
        object_type=object_type,
        id=str(row["Id"]),
        phones=phones,
        name=str(row.get("Name") or ""),
        owner_id=row.get("OwnerId") or None,
        modified_at=_parse_sf_datetime(row.get("LastModifiedDate")),
        parent_id=(row.get("AccountId") or None) if object_type == "contact" else None,
        extra=extra,
    )


def _parse_sf_datetime(value: Any) -> datetime | None:
    """``2024-05-01T10:00:00.000+0000`` → aware datetime; anything else → None."""
    if not isinstance(value, str) or not value:
        return None
    for pattern in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(value, pattern)
        except ValueError:
            continue
    return None
