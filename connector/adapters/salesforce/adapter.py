"""`SalesforceAdapter`: the ``salesforce`` target, put together from the package's parts.

Each part is a mixin over `client._SalesforceApi` (the session, the login and every request):
`search._Search` (phone search, owners), `leads._Leads` (leads for unknown callers),
`write._Write` (the call's records, idempotent retries) and `check._Check` (the preflight).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib import resources
from typing import Any, Self

import requests

from connector.adapters.salesforce.check import _Check
from connector.adapters.salesforce.leads import _Leads
from connector.adapters.salesforce.options import SalesforceOptions
from connector.adapters.salesforce.records import DESCRIPTION_LIMIT, SUBJECT_LIMIT
from connector.adapters.salesforce.write import _Write
from connector.config.sections import TargetConfig

#: The package's logger (named as before the package was split into modules).
log = logging.getLogger(__package__)


class SalesforceAdapter(_Check, _Write, _Leads):
    """Logs calls as Salesforce Tasks (see the package docstring); idempotent per call id.

    `session` replaces the `requests.Session` the adapter would create (tests pass one that
    trusts a local server's certificate); the adapter mounts its timeout adapter on it.
    """

    type_name = "salesforce"
    config_schema = SalesforceOptions
    default_mapping = resources.files(__package__) / "mapping.yaml"
    searchable_objects = ("contact", "lead", "account")
    creatable_objects = ("lead",)
    field_limits = {"Subject": SUBJECT_LIMIT, "Description": DESCRIPTION_LIMIT}
    supports_overflow = True  # an Enhanced Note (ContentNote) takes what does not fit

    @classmethod
    def from_config(cls, target: TargetConfig) -> Self:
        """The adapter for `target`, with what it needs of the target's policy.

        Besides the options: the policy's owners and the fields the mapping writes on the Task
        (``task_fields``) and on a new Lead (``lead_fields``), which `check` verifies; the
        object types ``matching.objects`` names (``matching_objects``: searched as far as
        ``search_objects`` allows), ``on_no_match`` (`check` asks for Lead create rights only
        for ``create_lead``) and ``defaults.timezone`` (``timezone``: the zone of the call's
        ``ActivityDate`` when the mapping does not set it).
        """
        policy = target.policy
        owners = {f"users.{user}": owner for user, owner in policy.owners.users.items()}
        if policy.owners.fallback:
            owners["fallback"] = policy.owners.fallback
        return cls(
            target.name,
            {
                **target.options,
                "owners": owners,
                "task_fields": {name: "" for name in policy.fields},
                "lead_fields": list(policy.new_record),
                "matching_objects": list(policy.matching.objects),
                "on_no_match": policy.matching.on_no_match,
                "timezone": policy.defaults.timezone,
            },
        )

    def __init__(
        self,
        name: str,
        options: Mapping[str, Any],
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(name, options, session)
        if options["auth"]["method"] == "password":
            log.warning(
                "Salesforce target %r logs in with username and password (SOAP login()); "
                "Salesforce is retiring that login (not in API 65.0+, off by default in new orgs, "
                "gone in Summer '27): switch to OAuth client credentials or JWT bearer.",
                name,
            )

    def close(self) -> None:
        """Close the HTTP connections."""
        self.session.close()
