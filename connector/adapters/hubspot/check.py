"""The preflight (``sipgate-crm check``): token and scopes, mapped owners, call properties."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.adapters.base import AdapterError, CheckResult
from connector.adapters.hubspot.errors import _Rejected
from connector.adapters.hubspot.owners import OwnersMixin

#: Scopes every target needs; companies/tickets/deals scopes are added by the options.
REQUIRED_SCOPES = (
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.owners.read",
)


def _mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:2]}***@{domain}" if domain else "***"


class CheckMixin(OwnersMixin):
    """`check` of the HubSpot adapter, and the scopes the options need."""

    associate_company: bool
    #: The object types the target's matching policy searches (set by `from_config`).
    matched_objects: tuple[str, ...]
    deal_rule: str
    ticket: Mapping[str, Any] | None
    unique_call_property: str | None
    #: What `check` verifies: owner references by config path, call properties by name.
    owner_refs: dict[str, str]
    checked_properties: list[str]

    def required_scopes(self) -> list[str]:
        """The scopes this target's options and matching policy need."""
        scopes = list(REQUIRED_SCOPES)
        if self.associate_company or "company" in self.matched_objects:
            scopes.append("crm.objects.companies.read")
        if self.deal_rule != "none":
            scopes.append("crm.objects.deals.read")
        if self.ticket:
            scopes.append("tickets")
        return scopes

    def _token_scopes(self) -> list[str] | None:
        """The token's scopes from HubSpot's private-app token introspection (no SDK method)."""
        api_client = self._basic.api_client
        info = self._send(
            "general",
            "reading the token's scopes",
            api_client.call_api,
            "/oauth/v2/private-apps/get/access-token-info",
            "POST",
            body={"tokenKey": self.access_token},
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
            except _Rejected:
                scopes = None  # not a private-app token (OAuth, service key): probe instead
            if scopes is None:
                self._send("general", "reading contacts", self._basic.get_page, "contacts", limit=1)
        except _Rejected as exc:
            return [CheckResult(False, str(exc))]
        except AdapterError as exc:
            return [CheckResult(False, f"Cannot reach HubSpot at {self.base_url}: {exc}")]
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
        return results

    def _check_owners(self) -> list[CheckResult]:
        owners = self.owner_refs
        problems: list[CheckResult] = []
        for where, owner in owners.items():
            try:
                if "@" in owner:
                    self._owner_cache.pop(owner.strip().casefold(), None)
                    if self.resolve_owner(owner) is None:
                        problems.append(
                            CheckResult(
                                False,
                                f"{where}: HubSpot has no active owner with the e-mail "
                                f"{_mask_email(owner)}.",
                            )
                        )
                else:
                    self._send("general", "reading an owner", self._owners.get_by_id, owner)
            except _Rejected as exc:
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
                prop = self._send(
                    "general",
                    "reading a call property",
                    self._properties.get_by_name,
                    "calls",
                    name,
                )
            except _Rejected as exc:
                if exc.status != 404:
                    results.append(CheckResult(False, f"Call property {name}: {exc}"))
                    continue
                results.append(CheckResult(False, f"HubSpot calls have no property {name!r}."))
                continue
            except AdapterError as exc:
                results.append(CheckResult(False, f"Call property {name}: cannot check: {exc}"))
                continue
            if name == self.unique_call_property and not getattr(prop, "has_unique_value", False):
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
