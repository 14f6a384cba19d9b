"""The Zendesk preflight (``sipgate-crm check``): the API token, the ticket fields the adapter
writes, and the groups and agents the target's maps name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from connector.adapters import AdapterError, CheckResult, HttpClient
from connector.adapters.zendesk.options import ZendeskOptions
from connector.adapters.zendesk.search import ZendeskSearcher

#: Roles whose token can create tickets for others (end users cannot).
_AGENT_ROLES: Final = frozenset({"agent", "admin"})
#: Pages of groups read at most (100 each).
_GROUP_PAGES: Final = 20


class ZendeskPreflight:
    """`check` of a Zendesk target: what its options need of the account."""

    def __init__(
        self, http: HttpClient, searcher: ZendeskSearcher, options: ZendeskOptions
    ) -> None:
        self.http = http
        self.searcher = searcher
        self.options = options

    def check(self) -> list[CheckResult]:
        """Token valid (an agent's), ticket fields active, mapped groups and agents exist.

        One `CheckResult` per finding; a rejected token ends the check (nothing else works).
        """
        try:
            me = self.http.request("GET", "api/v2/users/me.json", operation="checking the token")
        except AdapterError as exc:
            return [CheckResult(False, f"Cannot use Zendesk at {self.http.base_url}: {exc}")]
        user = me.get("user") if isinstance(me, Mapping) else None
        if not isinstance(user, Mapping) or user.get("id") is None:
            # /users/me answers an anonymous user when the credentials are not accepted.
            return [
                CheckResult(False, "Zendesk did not accept the email and api_token (anonymous).")
            ]
        role = str(user.get("role") or "")
        if role not in _AGENT_ROLES:
            return [
                CheckResult(
                    False,
                    f"The api_token belongs to a user with role {role or 'unknown'}: "
                    "tickets need an agent's or admin's token.",
                )
            ]
        results = [CheckResult(True, f"API token accepted (role {role}).")]
        results.extend(self._check_fields())
        results.extend(self._check_groups())
        results.extend(self._check_assignees())
        return results

    def needed_fields(self) -> list[str]:
        """The ticket field types the adapter writes with these options."""
        needed = ["subject", "description", "status"]
        if self.options.priority is not None:
            needed.append("priority")
        if self.options.group_map:
            needed.append("group")
        if self.options.assignee_map:
            needed.append("assignee")
        return needed

    def _check_fields(self) -> list[CheckResult]:
        try:
            answer = self.http.request(
                "GET", "api/v2/ticket_fields.json", operation="reading the ticket fields"
            )
        except AdapterError as exc:
            return [CheckResult(False, f"Ticket fields: cannot check: {exc}")]
        listed = answer.get("ticket_fields") if isinstance(answer, Mapping) else None
        active = {
            str(f.get("type"))
            for f in listed or ()
            if isinstance(f, Mapping) and f.get("active", True)
        }
        missing = [name for name in self.needed_fields() if name not in active]
        if missing:
            return [
                CheckResult(
                    False,
                    f"Ticket fields not active in Zendesk: {', '.join(missing)} "
                    "(Admin Center → Objects and rules → Tickets → Fields).",
                )
            ]
        return [CheckResult(True, f"Ticket fields active: {', '.join(self.needed_fields())}.")]

    def _groups(self) -> dict[str, bool]:
        """Group id → whether it is deleted, over all pages."""
        groups: dict[str, bool] = {}
        page: str | None = "api/v2/groups.json?per_page=100"
        for _ in range(_GROUP_PAGES):
            if page is None:
                break
            answer: Any = self.http.request("GET", page, operation="reading the groups")
            for group in answer.get("groups") or () if isinstance(answer, Mapping) else ():
                if isinstance(group, Mapping) and group.get("id") is not None:
                    groups[str(group["id"])] = bool(group.get("deleted", False))
            following = answer.get("next_page") if isinstance(answer, Mapping) else None
            page = str(following) if following else None
        return groups

    def _check_groups(self) -> list[CheckResult]:
        wanted = dict(self.options.group_map)
        if not wanted:
            return []
        try:
            groups = self._groups()
        except AdapterError as exc:
            return [CheckResult(False, f"Groups: cannot check: {exc}")]
        problems = [
            CheckResult(False, f"group_map.{user}: Zendesk has no group {group_id}.")
            for user, group_id in wanted.items()
            if groups.get(group_id, True)
        ]
        return problems or [CheckResult(True, f"All {len(wanted)} mapped groups exist.")]

    def _check_assignees(self) -> list[CheckResult]:
        wanted = dict(self.options.assignee_map)
        problems: list[CheckResult] = []
        for user, agent in wanted.items():
            try:
                if "@" in agent:
                    found = self.searcher.find_agent(agent) is not None
                else:
                    record = self.searcher.read_user(agent)
                    found = record is not None and record.extra.get("role") in _AGENT_ROLES
            except AdapterError as exc:
                problems.append(CheckResult(False, f"assignee_map.{user}: cannot check: {exc}"))
                continue
            if not found:
                problems.append(
                    CheckResult(False, f"assignee_map.{user}: Zendesk has no such agent.")
                )
        if wanted and not problems:
            problems.append(CheckResult(True, f"All {len(wanted)} mapped agents exist."))
        return problems
