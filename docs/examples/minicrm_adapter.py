"""An adapter for MiniCRM, a small fictional HTTP CRM: the worked example of docs/adapters.md.

MiniCRM keeps persons (with one phone number) and logs calls as activities with follow-up
tasks; every object it creates can carry an ``external_id``, which the adapter sets to the
sipgate call id so that an object whose create answer was lost can be looked up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from connector.adapters import (
    Adapter,
    AdapterError,
    CallerClaims,
    CheckResult,
    CrmRecord,
    DeliveryJob,
    HttpClient,
    HttpPolicy,
    Journal,
    OwnerCache,
    PhoneNumber,
    WriteResult,
    create_once,
    option,
    truncate_to,
)

#: How MiniCRM answers: 401/403 name the token, 429 says how long to wait (``Retry-After``),
#: a used-up daily quota says so in a header, and error bodies carry a safe error code.
POLICY = HttpPolicy(
    service="MiniCRM",
    credential="api_token",
    reset_headers=("X-RateLimit-Reset",),
    daily_limit=lambda headers, body: headers.get("X-Daily-Quota-Remaining") == "0",
    scopes=lambda body: body.get("missing_scopes", []) if isinstance(body, dict) else [],
    detail=lambda body: str(body.get("code", "")) if isinstance(body, dict) else "",
)
SCOPES = frozenset({"persons:read", "persons:write", "activities:write", "users:read"})


@dataclass(frozen=True)
class MiniCrmOptions:
    """Options of a ``minicrm`` target."""

    api_token: str = option(help="A MiniCRM API token with the scopes in SCOPES.")
    base_url: str = option("https://api.minicrm.invalid/v1", help="MiniCRM's API address.")
    owner_cache_seconds: float = option(300.0, help="How long an owner lookup is kept.")


class MiniCrmAdapter(Adapter):
    """Logs a call as a MiniCRM call activity on the matched person, with its tasks."""

    type_name = "minicrm"
    options_type = MiniCrmOptions
    options: MiniCrmOptions
    default_mapping = Path(__file__).with_name("minicrm_mapping.yaml")
    searchable_objects = ("person",)
    creatable_objects = ("person",)
    field_limits = {"subject": 255, "note": 20000}

    def __init__(
        self, name: str, options: MiniCrmOptions, session: requests.Session | None = None
    ) -> None:
        super().__init__(name, options)
        self.http = HttpClient(
            options.base_url,
            POLICY,
            session=session,
            headers={"Authorization": f"Bearer {options.api_token}"},
            secrets=(options.api_token,),
            target=name,
        )
        self.owners = OwnerCache(self._find_owner, ttl=options.owner_cache_seconds)

    def check(self) -> list[CheckResult]:
        """The token works and has every scope the adapter needs."""
        try:
            me = self.http.request("GET", "me", operation="checking the token")
        except AdapterError as exc:
            return [CheckResult(False, str(exc))]
        missing = sorted(SCOPES - set(me.get("scopes", [])))
        if missing:
            return [CheckResult(False, f"The api_token lacks the scopes {', '.join(missing)}.")]
        return [CheckResult(True, "MiniCRM answers and the api_token has every scope needed.")]

    def search_by_phone(self, number: PhoneNumber, object_types: Sequence[str]) -> list[CrmRecord]:
        """Persons whose phone is `number` (MiniCRM compares E.164 forms)."""
        found = self.http.request(
            "GET", "persons", operation="searching persons", params={"phone": number.e164}
        )
        return [self._person(person) for person in found["data"]]

    def create_record(
        self, object_type: str, number: PhoneNumber, fields: Mapping[str, Any], journal: Journal
    ) -> CrmRecord:
        """One person per new caller, also when two deliveries for the number run at once."""
        person = {"name": str(fields.get("name") or "Unknown caller"), "phone": number.e164}
        person_id = CallerClaims(self.memo, "person").record_for(
            number,
            journal,
            create=lambda: self._create("persons", person, "creating a person"),
            lookup=lambda: self._first("persons", {"phone": number.e164}, "finding a person"),
        )
        return CrmRecord("person", person_id, (number.e164,), name=person["name"])

    def resolve_owner(self, email: str) -> str | None:
        """The MiniCRM user id of `email` (cached)."""
        return self.owners.resolve(email)

    def write(self, job: DeliveryJob, journal: Journal) -> WriteResult:
        """The call activity, then each task: each created once, looked up after a lost answer."""
        refs: dict[str, Any] = {}
        for key, path, body in self._operations(job):
            refs[key] = create_once(
                journal,
                key,
                create=lambda p=path, b=body, k=key: self._create(p, b, f"creating the {k}"),
                lookup=lambda p=path, b=body, k=key: self._first(
                    p, {"external_id": b["external_id"]}, f"finding the {k}"
                ),
            )
        return WriteResult(refs)

    def describe_write(self, job: DeliveryJob) -> list[dict[str, Any]]:
        """The requests `write` sends for `job`."""
        return [{"op": f"POST /{path}", "body": body} for _, path, body in self._operations(job)]

    def close(self) -> None:
        """Close the HTTP connections."""
        self.http.close()

    def _operations(self, job: DeliveryJob) -> list[tuple[str, str, dict[str, Any]]]:
        """(journal key, path, body) of every object the call needs, in order."""
        report = job.report
        person = job.matches[0].id if job.matches else None
        activity = {
            "type": "call",
            "external_id": report.call_id,
            "subject": truncate_to(job.fields.get("subject") or report.headline or "Call", 255),
            "note": truncate_to(job.fields.get("note") or report.summary, 20000),
            "direction": "inbound" if report.direction == "IN" else "outbound",
            "started_at": report.start_time.isoformat(),
            "duration_seconds": int(report.duration.total_seconds()),
            "person_id": person,
            "owner_id": job.owner_id,
        }
        operations = [("activity", "activities", activity)]
        for number, task in enumerate(job.tasks, start=1):
            body = {
                "external_id": f"{report.call_id}#task{number}",
                "subject": truncate_to(task.subject, 255),
                "note": task.body,
                "due_date": task.due.isoformat(),
                "priority": task.priority,
                "person_id": person,
                "owner_id": task.owner_id or job.owner_id,
            }
            operations.append((f"task{number}", "tasks", body))
        return operations

    def _create(self, path: str, body: Mapping[str, Any], operation: str) -> str:
        created = self.http.request("POST", path, operation=operation, json=body)
        return str(created["data"]["id"])

    def _first(self, path: str, params: Mapping[str, str], operation: str) -> str | None:
        found = self.http.request("GET", path, operation=operation, params=params)
        return str(found["data"][0]["id"]) if found["data"] else None

    def _find_owner(self, email: str) -> str | None:
        return self._first("users", {"email": email}, "finding an owner")

    @staticmethod
    def _person(person: Mapping[str, Any]) -> CrmRecord:
        return CrmRecord(
            "person", str(person["id"]), (str(person["phone"]),), name=str(person["name"])
        )
