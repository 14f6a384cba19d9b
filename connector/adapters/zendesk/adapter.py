"""The ``zendesk`` adapter: an HTTP client, a searcher, a writer and a preflight, joined."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from typing import Any

import requests

from connector.adapters import (
    Adapter,
    CheckResult,
    CrmRecord,
    DeliveryJob,
    Journal,
    Memo,
    PermanentError,
    PhoneNumber,
    RateLimiter,
    WriteResult,
    scrubbed_errors,
)
from connector.adapters.zendesk.check import ZendeskPreflight
from connector.adapters.zendesk.client import http_client
from connector.adapters.zendesk.options import ZendeskOptions
from connector.adapters.zendesk.search import SEARCHABLE_OBJECTS, ZendeskSearcher
from connector.adapters.zendesk.write import SUBJECT_LIMIT, ZendeskWriter

#: Characters of the internal note the mapping may fill (Zendesk documents no limit; this
#: keeps a note readable and the request small).
COMMENT_LIMIT = 65_536


class ZendeskAdapter(Adapter):
    """Creates a Zendesk ticket per call; see the package docstring for what and how."""

    type_name = "zendesk"
    options_type = ZendeskOptions
    default_mapping = resources.files(__package__) / "mapping.yaml"
    searchable_objects = SEARCHABLE_OBJECTS
    creatable_objects = ("contact",)
    writable_fields = frozenset({"subject", "comment"})
    field_limits = {"subject": SUBJECT_LIMIT, "comment": COMMENT_LIMIT}

    def __init__(
        self,
        name: str,
        options: ZendeskOptions,
        *,
        limiter: RateLimiter | None = None,
        session: requests.Session | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """Build the parts; nothing is sent yet. `limiter`, `session` and `wall_clock`
        (epoch seconds, for the new-caller claims) are for tests."""
        super().__init__(name, options)
        self.options: ZendeskOptions = options
        self.http = http_client(name, options, limiter, session)
        self.searcher = ZendeskSearcher(name, self.http, options.cache_seconds)
        self.writer = ZendeskWriter(self.http, self.searcher, options, self.memo, wall_clock)
        self.preflight = ZendeskPreflight(self.http, self.searcher, options)

    def bind_memo(self, memo: Memo) -> None:
        """Keep the new-caller claims in `memo` (shared by every worker)."""
        super().bind_memo(memo)
        self.writer.claims = self.writer.claims_in(memo)

    def check(self) -> list[CheckResult]:
        """Token, ticket fields, mapped groups and agents; one `CheckResult` per finding."""
        return self.preflight.check()

    def search_by_phone(self, number: PhoneNumber, object_types: Sequence[str]) -> list[CrmRecord]:
        """Users whose phone may be `number` (see `ZendeskSearcher.search_by_phone`)."""
        return self.searcher.search_by_phone(number, object_types)

    def describe_search(self, number: PhoneNumber, object_types: Sequence[str]) -> dict[str, Any]:
        """The user searches `search_by_phone` sends."""
        return self.searcher.describe_search(number, object_types)

    def resolve_owner(self, email: str) -> str | None:
        """The id of the agent with this e-mail address (cached), or ``None``."""
        return self.searcher.resolve_agent(email)

    def create_record(
        self, object_type: str, number: PhoneNumber, fields: Mapping[str, Any], journal: Journal
    ) -> CrmRecord:
        """An end user for an unknown caller, at most one per number."""
        if object_type not in self.creatable_objects:
            raise PermanentError(f"Zendesk targets create contacts (users), not {object_type}.")
        return self.writer.create_user(number, fields, journal)

    def write(self, job: DeliveryJob, journal: Journal) -> WriteResult:
        """The call's ticket, at most once per call id; names of the job never reach an error."""
        with scrubbed_errors(job.personal_values()):
            return self.writer.write(job, journal)

    def describe_write(self, job: DeliveryJob) -> list[dict[str, Any]]:
        """The requests `write` sends for `job`; writes nothing (an ``assignee_map`` e-mail
        is looked up)."""
        return [
            {
                "op": "lookup",
                "method": "GET",
                "path": "/api/v2/tickets.json",
                "params": {"external_id": job.report.call_id},
                "then": "create the ticket unless one exists",
            },
            {
                "op": "create",
                "method": "POST",
                "path": "/api/v2/tickets.json",
                "body": self.writer.ticket_body(job),
            },
        ]

    def close(self) -> None:
        """Close the HTTP connections and a shared rate limit store."""
        self.http.close()
        if self.http.limiter is not None:
            self.http.limiter.close()
