"""Zendesk users by phone number, by id and by external id, and agents by e-mail.

Zendesk's search takes a phone number as digits only (no ``+``, no spaces) and a leading ``*``
for a number stored in any format (Talk Partner Edition, "Retrieving the Zendesk user id of a
caller"). `ZendeskSearcher.search_by_phone` asks for each spelling in `phone_queries` in turn,
the exact one first, and stops at the first that finds a user whose number is the caller's;
the matching policy re-checks every hit (``*`` also finds the same digits of another country).
Zendesk users are the connector's ``contact`` records.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from connector.adapters import (
    CrmRecord,
    HttpClient,
    OwnerCache,
    PermanentError,
    PhoneNumber,
    RetryableError,
    same_number,
)
from connector.logs import mask_number

log = logging.getLogger("connector.adapters.zendesk")

#: Object types the searcher finds: Zendesk users, as the connector's contacts.
SEARCHABLE_OBJECTS: Final = ("contact",)
USERS_SEARCH: Final = "api/v2/users/search.json"
#: Users per search page (Zendesk's largest); the policy picks among them.
_PAGE: Final = 100
#: Roles of users a ticket can be assigned to.
_AGENT_ROLES: Final = frozenset({"agent", "admin"})


def phone_queries(number: PhoneNumber) -> list[str]:
    """The ``query`` values searched for `number`: the E.164 digits (the exact match, one
    request for numbers stored in international form), then ``*`` with the national
    significant number, which finds every other spelling (``030 …``, ``(30) …``, ``0049 …``)."""
    return [f"phone:{number.digits()}", f"phone:*{number.national_significant}"]


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def user_record(user: Mapping[str, Any]) -> CrmRecord:
    """A Zendesk user (as the API answers it) as a ``contact`` `CrmRecord`."""
    organization = user.get("organization_id")
    return CrmRecord(
        object_type="contact",
        id=str(user["id"]),
        phones=(str(user["phone"]),) if user.get("phone") else (),
        name=str(user.get("name") or ""),
        modified_at=_moment(user.get("updated_at")),
        parent_id=str(organization) if organization else None,
        extra={"role": str(user.get("role") or "")},
    )


def _users(answer: Any, key: str = "users") -> list[Mapping[str, Any]]:
    """The users of an answer; an answer without the list (a proxy's page) is retried."""
    users = answer.get(key) if isinstance(answer, Mapping) else None
    if not isinstance(users, list):
        raise RetryableError(f"Zendesk's answer has no {key} list.")
    return [u for u in users if isinstance(u, Mapping) and u.get("id") is not None]


class ZendeskSearcher:
    """Reads of the Zendesk adapter through `http`; agent lookups are cached `ttl` seconds."""

    def __init__(self, name: str, http: HttpClient, ttl: float = 300.0) -> None:
        self.name = name
        self.http = http
        self.agents = OwnerCache(self.find_agent, ttl)

    @staticmethod
    def _object_types(object_types: Sequence[str]) -> None:
        unknown = [t for t in object_types if t not in SEARCHABLE_OBJECTS]
        if unknown:
            raise PermanentError(
                f"Zendesk targets search contact (users), not {', '.join(unknown)}."
            )

    def describe_search(self, number: PhoneNumber, object_types: Sequence[str]) -> dict[str, Any]:
        """The searches `search_by_phone` sends, in order, until one finds the caller."""
        self._object_types(object_types)
        return {
            "requests": [
                {"method": "GET", "path": f"/{USERS_SEARCH}", "params": {"query": q}}
                for q in phone_queries(number)
            ],
            "stops": "at the first search that finds a user with the caller's number",
        }

    def search_by_phone(self, number: PhoneNumber, object_types: Sequence[str]) -> list[CrmRecord]:
        """Users whose phone may be `number`: each of `phone_queries` until one finds a user
        holding the caller's number; every user found on the way is returned once."""
        self._object_types(object_types)
        if not object_types:
            return []
        found: dict[str, CrmRecord] = {}
        for query in phone_queries(number):
            answer = self.http.request(
                "GET",
                USERS_SEARCH,
                operation="searching users by phone",
                params={"query": query, "per_page": _PAGE},
            )
            for user in _users(answer):
                record = user_record(user)
                found.setdefault(record.id, record)
            region = number.region or ""
            if any(same_number(p, number, region) for r in found.values() for p in r.phones):
                break
        log.debug("%s: %d users found for %s", self.name, len(found), mask_number(number.e164))
        return list(found.values())

    def read_user(self, user_id: str) -> CrmRecord | None:
        """The user `user_id`, or ``None`` when Zendesk has none (deleted, merged)."""
        answer = self.http.request(
            "GET", f"api/v2/users/{user_id}.json", operation="reading a user", missing_ok=True
        )
        if answer is None:
            return None
        user = answer.get("user") if isinstance(answer, Mapping) else None
        if not isinstance(user, Mapping) or user.get("id") is None or not user.get("active", True):
            return None
        return user_record(user)

    def user_by_external_id(self, external_id: str) -> str | None:
        """The id of the user with this ``external_id`` (no search index: no lag), or None."""
        answer = self.http.request(
            "GET",
            USERS_SEARCH,
            operation="looking up a new user",
            params={"external_id": external_id},
        )
        users = _users(answer)
        return str(users[0]["id"]) if users else None

    def resolve_agent(self, email: str) -> str | None:
        """The id of the agent with this e-mail address (cached `ttl` seconds), or None."""
        return self.agents.resolve(email)

    def find_agent(self, email: str) -> str | None:
        """The id of the agent or admin with this e-mail address, asked of Zendesk."""
        answer = self.http.request(
            "GET",
            USERS_SEARCH,
            operation="looking up an agent",
            params={"query": f"email:{email}"},
        )
        for user in _users(answer):
            same = str(user.get("email") or "").casefold() == email.casefold()
            if same and user.get("role") in _AGENT_ROLES:
                return str(user["id"])
        return None
