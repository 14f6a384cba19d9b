"""The ``salesforce`` adapter: a client, a searcher, a writer (with new callers' leads) and a
preflight, joined."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any, Self

import requests

from connector.adapters import (
    Adapter,
    CheckResult,
    CrmRecord,
    DeliveryJob,
    Journal,
    Memo,
    PhoneNumber,
    WriteResult,
    mapped_constants,
    scrubbed_errors,
)
from connector.adapters.salesforce.check import SalesforcePreflight
from connector.adapters.salesforce.client import SalesforceClient
from connector.adapters.salesforce.leads import SalesforceLeads
from connector.adapters.salesforce.lengths import FieldLengths
from connector.adapters.salesforce.options import PolicyNeeds, SalesforceOptions
from connector.adapters.salesforce.records import DESCRIPTION_LIMIT, SUBJECT_LIMIT
from connector.adapters.salesforce.search import SEARCHABLE_OBJECTS, SalesforceSearcher
from connector.adapters.salesforce.taskvalues import OrgTaskValues
from connector.adapters.salesforce.write import SalesforceWriter
from connector.config.sections import TargetConfig

log = logging.getLogger(__package__)


class SalesforceAdapter(Adapter):
    """Logs calls as Salesforce Tasks (see the package docstring); idempotent per call id.

    `session` replaces the `requests.Session` the adapter would create (tests pass one that
    trusts a local server's certificate); the adapter mounts its timeout adapter on it. `needs`
    is what the target's delivery policy asks of it (`from_config` passes it).
    """

    type_name = "salesforce"
    options_type = SalesforceOptions
    default_mapping = resources.files(__package__) / "mapping.yaml"
    searchable_objects = SEARCHABLE_OBJECTS
    creatable_objects = ("lead",)
    field_limits = {"Subject": SUBJECT_LIMIT, "Description": DESCRIPTION_LIMIT}
    supports_overflow = True  # an Enhanced Note (ContentNote) takes what does not fit
    supports_name_search = True

    def __init__(
        self,
        name: str,
        options: SalesforceOptions,
        session: requests.Session | None = None,
        *,
        needs: PolicyNeeds | None = None,
    ) -> None:
        super().__init__(name, options)
        self.options: SalesforceOptions = options
        self.needs = needs if needs is not None else PolicyNeeds()
        self.client = SalesforceClient(name, options, session)
        self.task_values = OrgTaskValues(self.client)
        lengths = FieldLengths(self.client)
        self.searcher = SalesforceSearcher(self.client, options, self.needs)
        self.leads = SalesforceLeads(self.client, self.searcher, lengths, options, self.memo)
        self.writer = SalesforceWriter(self.client, self.task_values, lengths, options, self.needs)
        self.preflight = SalesforcePreflight(
            self.client, self.searcher, self.task_values, options, self.needs
        )
        if options.auth["method"] == "password":
            log.warning(
                "Salesforce target %r logs in with username and password (SOAP login()); "
                "Salesforce is retiring that login (not in API 65.0+, off by default in new orgs, "
                "gone in Summer '27): switch to OAuth client credentials or JWT bearer.",
                name,
            )

    @classmethod
    def from_config(cls, target: TargetConfig) -> Self:
        """The adapter for `target`, with what it needs of the target's policy (`PolicyNeeds`):
        its owners, the Task fields the mapping writes (and their constants), the fields of a
        new Lead, ``matching.objects``, ``on_no_match`` and ``defaults.timezone``."""
        policy = target.policy
        owners = {f"users.{user}": owner for user, owner in policy.owners.users.items()}
        if policy.owners.fallback:
            owners["fallback"] = policy.owners.fallback
        constants = mapped_constants(policy.fields)
        needs = PolicyNeeds(
            owners=owners,
            task_fields={name: constants.get(name, "") for name in policy.fields},
            lead_fields=tuple(policy.new_record),
            matching_objects=tuple(policy.matching.objects),
            on_no_match=policy.matching.on_no_match,
            timezone=policy.defaults.timezone,
        )
        return cls(target.name, target.options, needs=needs)

    def bind_memo(self, memo: Memo) -> None:
        """Keep the new callers' lead claims in `memo` (shared by every worker)."""
        super().bind_memo(memo)
        self.leads.claims = self.leads.claims_in(memo)

    def check(self) -> list[CheckResult]:
        """Login, fields, picklist values, search, notes, cases and owners (one result each)."""
        return self.preflight.check()

    def search_by_phone(self, number: PhoneNumber, object_types: Sequence[str]) -> list[CrmRecord]:
        """Contacts, open Leads and Accounts whose phone fields may hold `number`."""
        return self.searcher.search_by_phone(number, object_types)

    def search_by_name(self, name: str, object_types: Sequence[str]) -> list[CrmRecord]:
        """Contacts, open Leads and Accounts by the words of `name`, in one SOSL request."""
        return self.searcher.search_by_name(name, object_types)

    def describe_search(self, number: PhoneNumber, object_types: Sequence[str]) -> dict[str, Any]:
        """The request `search_by_phone` would send."""
        return self.searcher.describe_search(number, object_types)

    def resolve_owner(self, email: str) -> str | None:
        """The id of the active Salesforce User with this e-mail address (cached), or ``None``."""
        return self.searcher.resolve_owner(email)

    def create_record(
        self, object_type: str, number: PhoneNumber, fields: Mapping[str, Any], journal: Journal
    ) -> CrmRecord:
        """A Lead for an unknown caller, at most one per number (see `SalesforceLeads`)."""
        if object_type != "lead":
            raise ValueError(f"Salesforce targets create leads, not {object_type!r}.")
        return self.leads.create(number, fields, journal)

    def write(self, job: DeliveryJob, journal: Journal) -> WriteResult:
        """Log the call (see the package docstring); a retry creates only what is missing.

        Salesforce quotes the values it refused: names of the job never reach an error message.
        """
        with scrubbed_errors(job.personal_values()):
            return self.writer.write(job, journal)

    def describe_write(self, job: DeliveryJob) -> list[dict[str, Any]]:
        """The requests `write` would send for `job` on a first attempt, bodies exact."""
        return self.writer.describe_write(job)

    def close(self) -> None:
        """Close the HTTP connections."""
        self.client.close()
