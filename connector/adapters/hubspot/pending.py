"""After a create whose outcome is unknown (timeout, dropped connection, 5xx): look the object
up before creating it again, and wait while HubSpot's search index may not show it yet.

Right before a create is sent, its ``<step>_pending`` marker is recorded (`_Marker`): the time
and, for tasks, notes and tickets, a fingerprint of each object sent (`_fingerprint`: SHA-256 of
the exact property values that identify it, never the text itself). The lookup accepts only
objects whose properties have one of those fingerprints, so it neither misses what the lost
attempt created when this attempt renders other text, nor adopts another call's objects that
merely share a subject. When an answer says the create was not applied (4xx, 429) or it was
never sent (the rate limiter refused), the marker this attempt set is undone, restoring what an
earlier attempt with unknown outcome had recorded; a marker this attempt did not set is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.adapters import Journal, RetryableError, fingerprint
from connector.adapters.hubspot.records import _Create
from connector.adapters.hubspot.values import _parse_time

#: After a create with unknown outcome, how long HubSpot's search may lag behind before a
#: lookup that finds nothing is trusted (HubSpot: "a few moments"; tools wait 10-60 s).
PENDING_SETTLE_SECONDS = 60.0

#: How far HubSpot's and our clocks may disagree when looking up recently created objects.
_CLOCK_SLACK = timedelta(minutes=5)

#: Results of one lookup (HubSpot's largest search page); newest first.
_LOOKUP_LIMIT = 200

#: Search's pseudo-property for "associated with record X" is ``associations.<singular>``.
_SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal"}
#: The creation-time property of each object type the adapter creates.
_CREATED = {"calls": "hs_createdate", "tasks": "hs_createdate", "notes": "hs_createdate"}
_CREATED_DEFAULT = "createdate"  # contacts, companies, deals, tickets

#: The properties whose values identify an object the adapter created (its fingerprint).
_IDENTITY: Mapping[str, tuple[str, ...]] = {
    "tasks": ("hs_task_subject", "hs_task_body", "hs_timestamp"),
    "notes": ("hs_note_body", "hs_timestamp"),
    "tickets": ("subject", "content"),
}
_MOMENTS = frozenset({"hs_timestamp"})


def _normal(name: str, value: Any) -> str:
    """A property value as compared: moments as epoch milliseconds (HubSpot answers
    ``…T12:00:00Z`` for ``…T12:00:00.000Z``), text with its whitespace runs collapsed."""
    text = "" if value is None else str(value)
    if name in _MOMENTS:
        moment = _parse_time(text.strip())
        if moment is not None:
            return str(int(moment.timestamp() * 1000))
    return " ".join(text.split())


def _fingerprint(object_type: str, properties: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the identifying property values of an object of `object_type`."""
    return fingerprint(*(_normal(name, properties.get(name)) for name in _IDENTITY[object_type]))


def _pending_parts(marker: Mapping[str, Any]) -> tuple[float, list[str | None]]:
    """(time, fingerprints by position) of a ``<step>_pending`` marker."""
    sent = marker.get("sent") or []
    return float(marker["at"]), [f if isinstance(f, str) else None for f in sent]


class _Marker:
    """The ``<step>_pending`` marker of one create: set right before the request goes out
    (`set`, the `before_send` of `SdkBase._send`), undone when it was not applied (`undo`)."""

    def __init__(self, journal: Journal, key: str, value: Callable[[], Any]) -> None:
        self.journal = journal
        self.key = key
        self.value = value
        self.previous: Any = None
        self.was_set = False

    def set(self) -> None:
        self.previous = self.journal.get(self.key)
        self.journal.record(self.key, self.value())
        self.was_set = True

    def undo(self) -> None:
        """Restore what was recorded before `set`; nothing when this attempt did not set it
        (an earlier attempt's unknown outcome still needs its lookup)."""
        if self.was_set:
            self.journal.record(self.key, self.previous)
            self.was_set = False


def wait_for_index(pending_since: float, now: float, what: str) -> None:
    """Raise `RetryableError` while the unknown attempt of `pending_since` (epoch s) is too
    recent at `now` for a lookup that found nothing to be trusted."""
    age = now - pending_since
    if age < PENDING_SETTLE_SECONDS:
        raise RetryableError(
            f"Whether the last attempt created the HubSpot {what} is unknown and HubSpot's "
            "search may not show it yet; looking again shortly.",
            retry_after=PENDING_SETTLE_SECONDS - age,
        )


def call_lookup_body(call_id_property: str, sipgate_call_id: str) -> dict[str, Any]:
    """The search for calls whose `call_id_property` is the sipgate call id, oldest first."""
    return {
        "filterGroups": [
            {
                "filters": [
                    {"propertyName": call_id_property, "operator": "EQ", "value": sipgate_call_id}
                ]
            }
        ],
        "properties": [call_id_property],
        "sorts": [{"propertyName": "hs_createdate", "direction": "ASCENDING"}],
        "limit": 10,
    }


def sent_lookup_body(creates: Sequence[_Create], since: float) -> dict[str, Any]:
    """The search for objects like `creates` made since `since` (epoch s, less the clock slack)
    on the record they are associated with (or of their owner), newest first."""
    first = creates[0]
    object_type = first.object_type
    created = _CREATED.get(object_type, _CREATED_DEFAULT)
    after = datetime.fromtimestamp(since, tz=UTC) - _CLOCK_SLACK
    filters: list[dict[str, Any]] = [
        {"propertyName": created, "operator": "GTE", "value": str(int(after.timestamp() * 1000))}
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
    return {
        "filterGroups": [{"filters": filters}],
        "properties": list(_IDENTITY[object_type]),
        "sorts": [{"propertyName": created, "direction": "DESCENDING"}],
        "limit": _LOOKUP_LIMIT,
    }


def match_sent(
    object_type: str,
    results: Sequence[Any],
    wanted: Sequence[str | None],
    known: Sequence[str | None] = (),
) -> dict[int, str]:
    """The lookup's `results` by the position in `wanted` whose fingerprint they have.

    Positions with ``None`` in `wanted` or an id in `known` are not looked for, and ids in
    `known` are not taken again. Of several objects with the same fingerprint the newest (the
    first result) is taken.
    """
    taken = {k for k in known if k}
    open_positions = [
        p for p, f in enumerate(wanted) if f is not None and not (p < len(known) and known[p])
    ]
    found: dict[int, str] = {}
    for result in results:
        object_id = str(result.id)
        if object_id in taken:
            continue
        sent = _fingerprint(object_type, result.properties or {})
        for position in open_positions:
            if wanted[position] == sent and position not in found:
                found[position] = object_id
                taken.add(object_id)
                break
    return found
