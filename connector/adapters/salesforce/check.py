"""The preflight check: login, and every field, picklist value and owner the adapter relies on.

`SalesforcePreflight.check` reports one result per problem (and one per part that is fine): the
Task fields the adapter and the mapping write (`TASK_FIELDS`), the constants the mapping writes
into restricted picklists, the length of the mapping's other text fields (values are cut to it),
the org's active Task values, the fields of the object types
actually searched (``matching.objects`` as far as ``search_objects`` allows) and
``match_field``, what Lead creation needs (only with ``on_no_match: create_lead``), Enhanced
Notes and Cases, the mapped owners, and (with owners) how retries keep seeing the Tasks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from connector.adapters import AdapterError, CheckResult
from connector.adapters.salesforce.client import SalesforceClient
from connector.adapters.salesforce.lengths import _text_lengths
from connector.adapters.salesforce.options import PolicyNeeds, SalesforceOptions
from connector.adapters.salesforce.records import _TASK_KNOWN_FIELDS, LEAD_FIELD_LIMITS
from connector.adapters.salesforce.search import SalesforceSearcher
from connector.adapters.salesforce.soql import (
    _PERSON_ACCOUNT_FIELDS,
    _RETURNING_FIELDS,
    _SOBJECTS,
    _select,
    _soql_string,
)
from connector.adapters.salesforce.taskvalues import OrgTaskValues

#: Task fields the adapter writes itself; `check` verifies they exist and are createable.
TASK_FIELDS: Final = (
    "Subject",
    "Description",
    "CallObject",
    "CallType",
    "CallDurationInSeconds",
    "TaskSubtype",
    "Type",
    "WhoId",
    "WhatId",
    "ActivityDate",
    "Status",
    "Priority",
    "OwnerId",
)

_SF_ID_RE: Final = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")


def _is_sf_id(value: str) -> bool:
    return bool(_SF_ID_RE.match(value))


def _active_values(found: Mapping[str, Any] | None) -> set[Any]:
    """The active values of a picklist field's describe."""
    return {p.get("value") for p in (found or {}).get("picklistValues") or [] if p.get("active")}


class SalesforcePreflight:
    """`check` of a Salesforce target, with one step per part of the configuration."""

    def __init__(
        self,
        client: SalesforceClient,
        searcher: SalesforceSearcher,
        task_values: OrgTaskValues,
        options: SalesforceOptions,
        needs: PolicyNeeds,
    ) -> None:
        self.client = client
        self.searcher = searcher
        self.task_values = task_values
        self.options = options
        self.needs = needs

    def check(self) -> list[CheckResult]:
        """Login, the fields and picklist values the adapter writes, the search fields, notes,
        cases and the mapped owners; one result per problem (and one per part that is fine)."""
        try:
            self.client.connect()
        except AdapterError as exc:
            return [CheckResult(False, f"Cannot log in to Salesforce: {exc}")]
        method = str(self.options.auth["method"]).replace("_", " ")
        results = [
            CheckResult(
                True,
                f"Logged in to {self.client.instance_url} (API v{self.client.version}, {method}).",
            )
        ]
        describes: dict[str, Mapping[str, Any]] = {}
        steps: list[tuple[str, Callable[[dict[str, Mapping[str, Any]]], list[CheckResult]]]] = [
            ("Task fields", self._check_task_fields),
            ("Task status and priority", self._check_task_values),
            ("Search", self._check_search),
            ("Notes", self._check_notes),
            ("Cases", self._check_case),
            ("Owners", self._check_owners),
        ]
        for title, step in steps:
            try:
                results.extend(step(describes))
            except AdapterError as exc:
                results.append(CheckResult(False, f"{title}: {exc}"))
        usage = self.client.api_usage
        if usage is not None:
            results.append(
                CheckResult(True, f"API requests in the last 24 hours: {usage[0]} of {usage[1]}.")
            )
        return results

    @staticmethod
    def _restricted_values(
        sobject: str, constants: Mapping[str, str], known: Mapping[str, Mapping[str, Any]]
    ) -> list[CheckResult]:
        """A constant the mapping writes into a restricted picklist that has no such active
        value: Salesforce would refuse every call (``INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST``)."""
        problems = []
        for name, value in constants.items():
            found = known.get(name.lower())
            if not value or found is None or not found.get("restrictedPicklist"):
                continue
            active = _active_values(found)
            offered = [str(v) for v in active]
            if value not in active:
                problems.append(
                    CheckResult(
                        False,
                        f"{sobject}.{name} is a restricted picklist without the value {value!r} "
                        f"the mapping writes (active values: {', '.join(sorted(offered))}).",
                    )
                )
        return problems

    def _describe(self, sobject: str, cache: dict[str, Mapping[str, Any]]) -> Mapping[str, Any]:
        if sobject not in cache:
            answer = self.client.call(
                f"describe {sobject}", lambda sf: sf.restful(f"sobjects/{sobject}/describe")
            )
            cache[sobject] = answer if isinstance(answer, Mapping) else {}
        return cache[sobject]

    def _fields(
        self, sobject: str, cache: dict[str, Mapping[str, Any]]
    ) -> dict[str, Mapping[str, Any]]:
        described = self._describe(sobject, cache)
        return {str(f["name"]).lower(): f for f in described.get("fields") or []}

    def _createable(
        self, sobject: str, names: Iterable[str], cache: dict[str, Mapping[str, Any]]
    ) -> list[CheckResult]:
        known = self._fields(sobject, cache)
        problems = []
        for name in dict.fromkeys(names):
            found = known.get(name.lower())
            if found is None:
                problems.append(
                    CheckResult(
                        False,
                        f"{sobject}.{name} does not exist or is not visible to the integration "
                        "user.",
                    )
                )
            elif not found.get("createable"):
                problems.append(
                    CheckResult(
                        False,
                        f"{sobject}.{name} is not createable for the integration user "
                        "(field-level security or a read-only field).",
                    )
                )
        return problems

    def _check_task_fields(self, cache: dict[str, Mapping[str, Any]]) -> list[CheckResult]:
        external = self.options.external_id_field
        extra = list(self.needs.task_fields)
        names = [*TASK_FIELDS, *([external] if external else []), *extra]
        problems = self._createable("Task", names, cache)
        known = self._fields("Task", cache)
        for field_name, required in (
            ("TaskSubtype", ("Call",)),
            ("CallType", ("Inbound", "Outbound")),
            ("Type", ("Call",)),
        ):
            found = known.get(field_name.lower())
            if found is None:
                continue
            active = _active_values(found)
            missing = [value for value in required if value not in active]
            if missing and (field_name != "Type" or found.get("restrictedPicklist")):
                problems.append(
                    CheckResult(
                        False,
                        f"Task.{field_name} lacks the active picklist value(s) "
                        f"{', '.join(missing)}.",
                    )
                )
        problems += self._restricted_values("Task", self.needs.task_fields, known)
        if external and (found := known.get(external.lower())) and not found.get("externalId"):
            problems.append(CheckResult(False, f"Task.{external} is not an External ID field."))
        lengths = self._length_notes("Task", extra, {*_TASK_KNOWN_FIELDS, external or ""}, cache)
        if problems:
            return problems + lengths
        return [CheckResult(True, f"Task fields ready: {', '.join(names)}."), *lengths]

    def _length_notes(
        self,
        sobject: str,
        names: Iterable[str],
        known: Iterable[str],
        cache: dict[str, Mapping[str, Any]],
    ) -> list[CheckResult]:
        """One line per mapped text field of `sobject` beyond the `known` ones: its length, to
        which `write` cuts what the templates render (a field shorter than the text it is meant
        for loses the rest)."""
        skipped = {name.lower() for name in known}
        wanted = [name for name in dict.fromkeys(names) if name.lower() not in skipped]
        if not wanted:
            return []
        lengths = _text_lengths(self._describe(sobject, cache))
        return [
            CheckResult(
                True,
                f"{sobject}.{name} (mapped) holds at most {lengths[name.lower()]} characters: "
                "longer rendered values are cut to that.",
            )
            for name in wanted
            if name.lower() in lengths
        ]

    def _check_task_values(self, cache: dict[str, Mapping[str, Any]]) -> list[CheckResult]:
        values = self.task_values.statuses()
        priorities = self.task_values.priorities()
        known = self._fields("Task", cache)
        problems = []
        for field_name, wanted in (
            ("Status", (values.closed_status, values.open_status)),
            ("Priority", tuple(priorities.values())),
        ):
            active = _active_values(known.get(field_name.lower()))
            missing = [value for value in wanted if active and value not in active]
            if missing:
                problems.append(
                    CheckResult(
                        False, f"Task.{field_name} lacks the org value(s) {', '.join(missing)}."
                    )
                )
        if problems:
            return problems
        return [
            CheckResult(
                True,
                f"Call Tasks get Status {values.closed_status!r}, follow-ups "
                f"{values.open_status!r} and Priority low/normal/high = "
                f"{priorities['low']!r}/{priorities['normal']!r}/{priorities['high']!r}.",
            )
        ]

    def _check_search(self, cache: dict[str, Mapping[str, Any]]) -> list[CheckResult]:
        wanted = self.searcher.wanted_types(())
        types = self.searcher.object_types(())
        match_field = self.options.match_field
        problems: list[CheckResult] = []
        notes: list[CheckResult] = []
        left_out = [item for item in wanted if item not in types]
        if not types:
            problems.append(
                CheckResult(
                    False,
                    f"Nothing is searched: matching.objects ({', '.join(wanted)}) names none of "
                    f"the search_objects option ({', '.join(self.options.searched)}).",
                )
            )
        elif left_out:
            problems.append(
                CheckResult(
                    False,
                    f"matching.objects names {', '.join(left_out)}, which the search_objects "
                    f"option ({', '.join(self.options.searched)}) leaves out: not "
                    "searched. Add it to search_objects or remove it from matching.objects.",
                )
            )
        for object_type in types:
            sobject = _SOBJECTS[object_type]
            known = self._fields(sobject, cache)
            returned = list(_RETURNING_FIELDS[object_type])
            if object_type == "account" and self.searcher.person_accounts:
                returned += _PERSON_ACCOUNT_FIELDS
            for name in returned:
                if name.lower() not in known:
                    problems.append(
                        CheckResult(False, f"{sobject}.{name} (searched) is not visible.")
                    )
            if match_field:
                found = known.get(match_field.lower())
                if found is None:
                    problems.append(
                        CheckResult(False, f"{sobject}.{match_field} (match_field) does not exist.")
                    )
                elif not found.get("filterable"):
                    problems.append(
                        CheckResult(False, f"{sobject}.{match_field} cannot be used in a filter.")
                    )
        if self.needs.on_no_match == "create_lead":
            lead_fields = list(self.needs.lead_fields)
            needed = ["LastName", "Company", "Phone", *lead_fields]
            if match_field and "lead" in types:
                needed.append(match_field)
            for problem in self._createable("Lead", needed, cache):
                problems.append(
                    CheckResult(
                        False, f"{problem.message} (needed to create leads for new callers)"
                    )
                )
            notes += self._length_notes("Lead", lead_fields, LEAD_FIELD_LIMITS, cache)
        if problems:
            return problems + notes
        how = f"SOQL on {match_field}" if match_field else "SOSL in phone fields"
        return [CheckResult(True, f"Phone search ready ({how}: {', '.join(types)})."), *notes]

    def _check_notes(self, cache: dict[str, Mapping[str, Any]]) -> list[CheckResult]:
        problems = self._createable("ContentNote", ("Title", "Content"), cache)
        problems += self._createable(
            "ContentDocumentLink", ("ContentDocumentId", "LinkedEntityId", "ShareType"), cache
        )
        if problems:
            return [
                CheckResult(False, f"{p.message} (needed for text that does not fit the Task)")
                for p in problems
            ]
        return [CheckResult(True, "Enhanced Notes can be created for text that does not fit.")]

    def _check_case(self, cache: dict[str, Mapping[str, Any]]) -> list[CheckResult]:
        case = self.options.case
        if case is None:
            return []
        names = ["Subject", "Description", "Origin", "ContactId", "AccountId", "SuppliedPhone"]
        names += ["Status"] if case.status else []
        names += ["RecordTypeId"] if case.record_type else []
        problems = self._createable("Case", names, cache)
        known = self._fields("Case", cache)
        for field_name, value in (("Origin", case.origin), ("Status", case.status)):
            found = known.get(field_name.lower())
            if value and found is not None:
                active = _active_values(found)
                if active and value not in active:
                    problems.append(
                        CheckResult(False, f"Case.{field_name} has no active value {value!r}.")
                    )
        if problems:
            return problems
        return [CheckResult(True, f"Cases can be created for channels {list(case.channels)}.")]

    def _check_owners(self, cache: dict[str, Mapping[str, Any]]) -> list[CheckResult]:
        owners = self.needs.owners
        if not owners:
            return []
        ids = sorted({v for v in owners.values() if _is_sf_id(v)})
        emails = sorted({v.lower() for v in owners.values() if not _is_sf_id(v)})
        conditions = []
        if ids:
            conditions.append(f"Id IN ({', '.join(map(_soql_string, ids))})")
        if emails:
            conditions.append(f"Email IN ({', '.join(map(_soql_string, emails))})")
        rows = self.client.query(
            _select("Id, Email, IsActive", "User", " OR ".join(conditions)),
            "owner check",
        )
        by_id = {str(r["Id"])[:15]: r for r in rows}
        by_email = {str(r.get("Email") or "").lower(): r for r in rows}
        problems = []
        for user, owner in sorted(owners.items()):
            found = by_id.get(owner[:15]) if _is_sf_id(owner) else by_email.get(owner.lower())
            shown = owner if _is_sf_id(owner) else "the mapped e-mail address"
            if found is None:
                problems.append(
                    CheckResult(False, f"Owner of sipgate user {user}: no Salesforce User {shown}.")
                )
            elif not found.get("IsActive"):
                problems.append(
                    CheckResult(
                        False, f"Owner of sipgate user {user}: User {found['Id']} is inactive."
                    )
                )
        visibility = []
        if not self.options.external_id_field:
            visibility.append(
                CheckResult(
                    True,
                    "Call Tasks are owned by the mapped users: after a lost answer a retry looks "
                    "them up by CallObject, and a Task the integration user cannot see is "
                    "created again. Give the integration user 'View All Data' (or set "
                    "external_id_field, which upserts the Tasks without a lookup).",
                )
            )
        if problems:
            return problems + visibility
        return [
            CheckResult(True, f"All {len(owners)} mapped owners are active Salesforce Users."),
            *visibility,
        ]
