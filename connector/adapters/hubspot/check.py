"""The HubSpot preflight (``sipgate-crm check``): token and scopes, mapped owners, call
properties and the options of the enumeration properties the mapping fills, the ticket's
pipeline and stage."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.adapters import AdapterError, CheckResult, Rejected
from connector.adapters.hubspot.client import HubSpotClient
from connector.adapters.hubspot.options import HubSpotOptions
from connector.adapters.hubspot.search import HubSpotSearcher

#: Scopes every target needs; companies/tickets/deals scopes are added by the options.
REQUIRED_SCOPES = (
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.owners.read",
)


def _mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:2]}***@{domain}" if domain else "***"


class HubSpotPreflight:
    """`check` of a HubSpot target: what its options and delivery policy need of the portal.

    `matched_objects` are the object types the matching policy searches, `owner_refs` the
    owners it names (config path → id or e-mail), `checked_properties` the call properties
    that must exist and `mapped_values` what the mapping writes into them for a call without
    data (its constant values), checked against the options of enumeration properties.
    """

    def __init__(
        self, client: HubSpotClient, searcher: HubSpotSearcher, options: HubSpotOptions
    ) -> None:
        self.client = client
        self.searcher = searcher
        self.options = options
        self.matched_objects: tuple[str, ...] = ()
        self.owner_refs: dict[str, str] = {}
        self.checked_properties: list[str] = list(
            dict.fromkeys(
                [
                    options.call_id_property,
                    *([options.unique_call_property] if options.unique_call_property else []),
                    *options.required_properties,
                ]
            )
        )
        self.mapped_values: dict[str, str] = {}

    def required_scopes(self) -> list[str]:
        """The scopes this target's options and matching policy need."""
        scopes = list(REQUIRED_SCOPES)
        if self.options.associate_company or "company" in self.matched_objects:
            scopes.append("crm.objects.companies.read")
        if self.options.deal_rule != "none":
            scopes.append("crm.objects.deals.read")
        if self.options.ticket:
            scopes.append("tickets")
        return scopes

    def _token_scopes(self) -> list[str] | None:
        """The token's scopes from HubSpot's private-app token introspection (no SDK method)."""
        api_client = self.client.basic.api_client
        info = self.client.send(
            "general",
            "reading the token's scopes",
            api_client.call_api,
            "/oauth/v2/private-apps/get/access-token-info",
            "POST",
            body={"tokenKey": self.client.access_token},
            response_types_map={200: "object"},
            auth_settings=[],
            _return_http_data_only=True,
        )
        scopes = info.get("scopes") if isinstance(info, Mapping) else None
        return [str(s) for s in scopes] if isinstance(scopes, list) else None

    def check(self) -> list[CheckResult]:
        """Token valid and scopes granted, mapped owners exist, call properties exist.

        One `CheckResult` per finding; a rejected token ends the check (nothing else works).
        """
        results: list[CheckResult] = []
        try:
            try:
                scopes = self._token_scopes()
            except Rejected:
                scopes = None  # not a private-app token (OAuth, service key): probe instead
            if scopes is None:
                self.client.send(
                    "general", "reading contacts", self.client.basic.get_page, "contacts", limit=1
                )
        except Rejected as exc:
            return [CheckResult(False, str(exc))]
        except AdapterError as exc:
            return [CheckResult(False, f"Cannot reach HubSpot at {self.client.base_url}: {exc}")]
        if scopes is None:
            results.append(
                CheckResult(True, "Access token accepted; HubSpot did not list its scopes.")
            )
        else:
            missing = [s for s in self.required_scopes() if s not in scopes]
            if missing:
                results.append(
                    CheckResult(
                        False,
                        f"The access token lacks the scope(s) {', '.join(missing)}: add them to "
                        "the HubSpot app and update the token.",
                    )
                )
            else:
                results.append(
                    CheckResult(True, "Access token valid; all required scopes granted.")
                )
        results.extend(self._check_owners())
        results.extend(self._check_properties())
        results.extend(self._check_ticket())
        return results

    def _check_owners(self) -> list[CheckResult]:
        owners = self.owner_refs
        problems: list[CheckResult] = []
        for where, owner in owners.items():
            try:
                if "@" in owner:
                    if self.searcher.find_owner(owner.strip()) is None:
                        problems.append(
                            CheckResult(
                                False,
                                f"{where}: HubSpot has no active owner with the e-mail "
                                f"{_mask_email(owner)}.",
                            )
                        )
                else:
                    self.client.send(
                        "general", "reading an owner", self.client.owners.get_by_id, owner
                    )
            except Rejected as exc:
                if exc.status == 403:  # the same for every owner: say it once
                    problems.append(CheckResult(False, f"owners: cannot be checked: {exc}"))
                    break
                if exc.status != 404:
                    problems.append(CheckResult(False, f"{where}: {exc}"))
                    continue
                problems.append(
                    CheckResult(False, f"{where}: HubSpot has no active owner {owner}.")
                )
            except AdapterError as exc:
                problems.append(CheckResult(False, f"{where}: cannot check: {exc}"))
        if owners and not problems:
            problems.append(CheckResult(True, f"All {len(owners)} mapped owners exist in HubSpot."))
        return problems

    def _check_properties(self) -> list[CheckResult]:
        wanted = self.checked_properties
        results: list[CheckResult] = []
        for name in wanted:
            try:
                prop = self.client.send(
                    "general",
                    "reading a call property",
                    self.client.properties.get_by_name,
                    "calls",
                    name,
                )
            except Rejected as exc:
                if exc.status != 404:
                    results.append(CheckResult(False, f"Call property {name}: {exc}"))
                    continue
                results.append(CheckResult(False, f"HubSpot calls have no property {name!r}."))
                continue
            except AdapterError as exc:
                results.append(CheckResult(False, f"Call property {name}: cannot check: {exc}"))
                continue
            results.extend(self._check_options(name, prop))
            if name == self.options.unique_call_property and not getattr(
                prop, "has_unique_value", False
            ):
                results.append(
                    CheckResult(
                        False,
                        f"Call property {name!r} does not require unique values, so it cannot "
                        "be unique_call_property.",
                    )
                )
        if not results:
            results.append(CheckResult(True, f"Call properties present: {', '.join(wanted)}."))
        return results

    def _check_options(self, name: str, prop: Any) -> list[CheckResult]:
        """A mapped constant of an enumeration property that is none of its options (HubSpot
        would refuse every call with ``INVALID_OPTION``)."""
        value = self.mapped_values.get(name)
        offered = [str(o.value) for o in getattr(prop, "options", None) or ()]
        if value is None or getattr(prop, "type", "") != "enumeration" or not offered:
            return []
        if value in offered:
            return []
        return [
            CheckResult(
                False,
                f"Call property {name!r} takes one of {', '.join(offered)}; the mapping writes "
                f"{value!r}.",
            )
        ]

    def _check_ticket(self) -> list[CheckResult]:
        """The ticket's pipeline exists and has the ticket's stage (when tickets are on)."""
        ticket = self.options.ticket
        if ticket is None:
            return []
        try:
            pipeline = self.client.send(
                "general",
                "reading the ticket pipeline",
                self.client.pipelines.get_by_id,
                "tickets",
                ticket.pipeline,
            )
        except Rejected as exc:
            if exc.status != 404:
                return [CheckResult(False, f"ticket.pipeline: {exc}")]
            return [
                CheckResult(
                    False, f"ticket.pipeline: HubSpot has no ticket pipeline {ticket.pipeline!r}."
                )
            ]
        except AdapterError as exc:
            return [CheckResult(False, f"ticket.pipeline: cannot check: {exc}")]
        stages = [str(stage.id) for stage in getattr(pipeline, "stages", None) or ()]
        if ticket.stage not in stages:
            return [
                CheckResult(
                    False,
                    f"ticket.stage: ticket pipeline {ticket.pipeline!r} has no stage "
                    f"{ticket.stage!r} (it has {', '.join(stages) or 'none'}).",
                )
            ]
        return [
            CheckResult(True, f"Ticket pipeline {ticket.pipeline!r} has stage {ticket.stage!r}.")
        ]
