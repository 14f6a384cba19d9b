"""After a create whose outcome is unknown (timeout, dropped connection, 5xx): look the object
up before creating it again, and wait while HubSpot's search index may not show it yet."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.adapters.base import RetryableError
from connector.adapters.hubspot.records import _Create
from connector.adapters.hubspot.sdk import SdkBase
from connector.adapters.hubspot.search import _SEARCH_LIMIT
from connector.adapters.hubspot.values import _parse_time

#: After a create with unknown outcome, how long HubSpot's search may lag behind before a
#: lookup that finds nothing is trusted (HubSpot: "a few moments"; tools wait 10-60 s).
PENDING_SETTLE_SECONDS = 60.0

#: How far HubSpot's and our clocks may disagree when looking up recently created objects.
_CLOCK_SLACK = timedelta(minutes=5)

#: Search's pseudo-property for "associated with record X" is ``associations.<singular>``.
_SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal"}
#: The creation-time property of each object type the adapter creates.
_CREATED = {"calls": "hs_createdate", "tasks": "hs_createdate", "notes": "hs_createdate"}
_CREATED_DEFAULT = "createdate"  # contacts, companies, deals, tickets


class PendingMixin(SdkBase):
    """The lookups and the wait after an unknown outcome, for writes and new contacts."""

    call_id_property: str

    def _wait_for_index(self, pending_since: float, what: str) -> None:
        """Raise `RetryableError` while the unknown attempt of `pending_since` (epoch s) is
        too recent for a lookup that found nothing to be trusted."""
        age = self.wall_clock() - pending_since
        if age < PENDING_SETTLE_SECONDS:
            raise RetryableError(
                f"Whether the last attempt created the HubSpot {what} is unknown and HubSpot's "
                "search may not show it yet; looking again shortly.",
                retry_after=PENDING_SETTLE_SECONDS - age,
            )

    def _find_call(self, sipgate_call_id: str) -> str | None:
        body = {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": self.call_id_property,
                            "operator": "EQ",
                            "value": sipgate_call_id,
                        }
                    ]
                }
            ],
            "properties": [self.call_id_property],
            "sorts": [{"propertyName": "hs_createdate", "direction": "ASCENDING"}],
            "limit": 10,
        }
        response = self._send(
            "search", "looking up the call", self._search.do_search, "calls", body
        )
        ids = [str(r.id) for r in response.results or ()]
        return ids[0] if ids else None

    def _find_recent(self, creates: Sequence[_Create], since: float) -> list[str]:
        """Objects like `creates` HubSpot made since `since` (epoch s): the lookup after a
        create with unknown outcome. Matched by association, creation time and their subject
        (tasks, tickets) or timestamp (notes)."""
        first = creates[0]
        identity = {"tasks": "hs_task_subject", "tickets": "subject"}.get(
            first.object_type, "hs_timestamp"
        )
        created = _CREATED.get(first.object_type, _CREATED_DEFAULT)
        after = datetime.fromtimestamp(since, tz=UTC) - _CLOCK_SLACK
        filters: list[dict[str, Any]] = [
            {
                "propertyName": created,
                "operator": "GTE",
                "value": str(int(after.timestamp() * 1000)),
            }
        ]
        if first.links:
            link = first.links[0]
            filters.append(
                {
                    "propertyName": f"associations.{_SINGULAR[link.to_type]}",
                    "operator": "EQ",
                    "value": link.to_id,
                }
            )
        elif first.properties.get("hubspot_owner_id"):
            filters.append(
                {
                    "propertyName": "hubspot_owner_id",
                    "operator": "EQ",
                    "value": first.properties["hubspot_owner_id"],
                }
            )
        body = {
            "filterGroups": [{"filters": filters}],
            "properties": [identity],
            "sorts": [{"propertyName": created, "direction": "DESCENDING"}],
            "limit": _SEARCH_LIMIT,
        }
        response = self._send(
            "search",
            f"looking up recent {first.object_type}",
            self._search.do_search,
            first.object_type,
            body,
        )

        def key(value: Any) -> Any:
            if identity == "hs_timestamp":
                return _parse_time(value)
            return str(value or "").strip().casefold()

        wanted = [key(c.properties.get(identity)) for c in creates]
        found: list[str] = []
        for result in response.results or ():
            value = key((result.properties or {}).get(identity))
            if value in wanted:
                wanted.remove(value)
                found.append(str(result.id))
        return found
