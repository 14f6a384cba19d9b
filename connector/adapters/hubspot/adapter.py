"""The ``hubspot`` adapter: a client, a searcher, a writer and a preflight, joined."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from typing import Any, Self

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
    mapped_constants,
    scrubbed_errors,
)
from connector.adapters.hubspot.check import HubSpotPreflight
from connector.adapters.hubspot.client import HubSpotClient, rate_limiter
from connector.adapters.hubspot.options import HubSpotOptions
from connector.adapters.hubspot.records import _TEXT_LIMIT, CallRecords
from connector.adapters.hubspot.search import SEARCHABLE_OBJECTS, HubSpotSearcher, _RecordCache
from connector.adapters.hubspot.write import HubSpotWriter
from connector.config.sections import TargetConfig


class HubSpotAdapter(Adapter):
    """Logs calls in HubSpot; see the package docstring for what is written and how."""

    type_name = "hubspot"
    options_type = HubSpotOptions
    default_mapping = resources.files(__package__) / "mapping.yaml"
    searchable_objects = SEARCHABLE_OBJECTS
    creatable_objects = ("contact",)
    field_limits = {"hs_call_title": _TEXT_LIMIT, "hs_call_body": _TEXT_LIMIT}
    supports_overflow = True  # a note takes what does not fit the call
    supports_name_search = True

    def __init__(
        self,
        name: str,
        options: HubSpotOptions,
        *,
        limiter: RateLimiter | None = None,
        wall_clock: Callable[[], float] = time.time,
        cache_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Build the parts; nothing is sent yet.

        `limiter` replaces the one built from ``rate_limit``/``rate_limit_store``; `wall_clock`
        (epoch seconds: pending creates, daily limit) and `cache_clock` are for tests.
        """
        super().__init__(name, options)
        self.options: HubSpotOptions = options
        self.client = HubSpotClient(
            name,
            options,
            limiter if limiter is not None else rate_limiter(options, name),
            wall_clock,
        )
        self.searcher = HubSpotSearcher(
            name, self.client, _RecordCache(options.cache_seconds, cache_clock)
        )
        self.records = CallRecords(options)
        self.writer = HubSpotWriter(self.client, self.searcher, self.records, wall_clock)
        self.preflight = HubSpotPreflight(self.client, self.searcher, options)
        self.bind_memo(self.memo)

    @classmethod
    def from_config(cls, target: TargetConfig) -> Self:
        """The adapter for `target`; `check` also verifies the policy's owners (users and
        fallback), that every call property the mapping writes exists in HubSpot, that its
        constant values are options of enumeration properties, and the scopes the policy's
        matching needs (companies)."""
        adapter = cls(target.name, target.options)
        preflight = adapter.preflight
        preflight.matched_objects = tuple(target.policy.matching.objects)
        owners = target.policy.owners
        preflight.owner_refs.update({f"owners.users.{u}": o for u, o in owners.users.items()})
        if owners.fallback:
            preflight.owner_refs["owners.fallback"] = owners.fallback
        mapped = [*target.policy.fields, *target.policy.limits]
        preflight.checked_properties = list(dict.fromkeys([*preflight.checked_properties, *mapped]))
        preflight.mapped_values = mapped_constants(target.policy.fields)
        return adapter

    def bind_memo(self, memo: Memo) -> None:
        """Share `memo` with the parts: the daily-limit reset and the new-caller claims."""
        super().bind_memo(memo)
        self.client.memo = memo
        self.writer.claims = self.writer.claims_in(memo)

    def check(self) -> list[CheckResult]:
        """Token valid and scopes granted, mapped owners, call properties and their options,
        the ticket pipeline; one `CheckResult` per finding."""
        return self.preflight.check()

    def search_by_phone(self, number: PhoneNumber, object_types: Sequence[str]) -> list[CrmRecord]:
        """Contacts and companies whose numbers may be `number` (see `HubSpotSearcher`)."""
        return self.searcher.search_by_phone(number, object_types)

    def search_by_name(self, name: str, object_types: Sequence[str]) -> list[CrmRecord]:
        """Contacts and companies by the words of `name` (see `HubSpotSearcher`)."""
        return self.searcher.search_by_name(name, object_types)

    def describe_search(self, number: PhoneNumber, object_types: Sequence[str]) -> dict[str, Any]:
        """The search requests `search_by_phone` sends, bodies exact."""
        return self.searcher.describe_search(number, object_types)

    def resolve_owner(self, email: str) -> str | None:
        """The id of the active HubSpot owner with this e-mail address (cached), or ``None``."""
        return self.searcher.resolve_owner(email)

    def create_record(
        self, object_type: str, number: PhoneNumber, fields: Mapping[str, Any], journal: Journal
    ) -> CrmRecord:
        """A contact for an unknown caller, at most one per number (see `HubSpotWriter`)."""
        if object_type not in self.creatable_objects:
            raise PermanentError(f"HubSpot targets can create contacts only, not {object_type}.")
        return self.writer.create_contact(number, fields, journal)

    def write(self, job: DeliveryJob, journal: Journal) -> WriteResult:
        """Log the call, then its tasks, note and ticket; each step at most once per call id.

        HubSpot quotes the values it refused: names of the job never reach an error message.
        """
        with scrubbed_errors(job.personal_values()):
            return self.writer.write(job, journal)

    def describe_write(self, job: DeliveryJob) -> list[dict[str, Any]]:
        """Every request `write` would send for `job`, with exact bodies; sends nothing."""
        return self.records.describe_write(job)

    def close(self) -> None:
        """Drop the SDK's connection pools and close a shared rate limit store."""
        self.client.close()
