"""Finding contacts and companies by phone number: the search bodies (one request per object
type), the reading of results as `CrmRecord`, and the number → records cache of this process."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from connector.adapters.base import CrmRecord, PermanentError
from connector.adapters.hubspot.sdk import SdkBase, _results
from connector.adapters.hubspot.values import _parse_time
from connector.logs import mask_number
from connector.phone import PhoneNumber

#: The package's logger (not this module's): log lines keep the name they had before the
#: adapter was split into modules.
log = logging.getLogger("connector.adapters.hubspot")

_SEARCH_LIMIT = 100  # results per phone search; the policy picks among them

_CONTACT_PROPERTIES = (
    "firstname",
    "lastname",
    "phone",
    "mobilephone",
    "hs_calculated_phone_number",
    "hs_calculated_mobile_number",
    "hubspot_owner_id",
    "lastmodifieddate",
    "associatedcompanyid",
)
_COMPANY_PROPERTIES = (
    "name",
    "phone",
    "hs_calculated_phone_number",
    "hubspot_owner_id",
    "hs_lastmodifieddate",
)
_OBJECTS = {"contact": "contacts", "company": "companies"}


class _RecordCache:
    """Search results per (object type, E.164 number) for `ttl` seconds, in this process."""

    def __init__(self, ttl: float, clock: Callable[[], float], max_entries: int = 10_000):
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], tuple[float, list[CrmRecord]]] = OrderedDict()

    def get(self, key: tuple[str, str]) -> list[CrmRecord] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self.clock():
                del self._entries[key]
                return None
            return list(entry[1])

    def put(self, key: tuple[str, str], records: Sequence[CrmRecord]) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (self.clock() + self.ttl, list(records))
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def holds(self, ids: Iterable[str]) -> bool:
        """True when a cached result contains any of `ids`."""
        wanted = set(ids)
        with self._lock:
            return any(r.id in wanted for _, records in self._entries.values() for r in records)

    def forget(self, ids: Iterable[str]) -> None:
        """Drop every cached result that contains one of `ids`."""
        wanted = set(ids)
        with self._lock:
            for key in [
                k for k, (_, rs) in self._entries.items() if any(r.id in wanted for r in rs)
            ]:
                del self._entries[key]


class SearchMixin(SdkBase):
    """`search_by_phone` and `describe_search` of the HubSpot adapter."""

    cache: _RecordCache

    def _object_names(self, object_types: Sequence[str]) -> list[str]:
        unknown = [t for t in object_types if t not in self.searchable_objects]
        if unknown:
            raise PermanentError(
                f"HubSpot targets search {', '.join(self.searchable_objects)}, not "
                f"{', '.join(unknown)}."
            )
        return list(dict.fromkeys(object_types))

    @staticmethod
    def _phone_search_body(object_type: str, number: PhoneNumber) -> dict[str, Any]:
        def eq(name: str, value: str) -> dict[str, Any]:
            return {"filters": [{"propertyName": name, "operator": "EQ", "value": value}]}

        if object_type == "contact":
            nsn = number.national_significant
            groups = [
                eq("hs_searchable_calculated_phone_number", nsn),
                eq("hs_searchable_calculated_mobile_number", nsn),
                eq("phone", number.e164),
                eq("mobilephone", number.e164),
            ]
            properties, modified = list(_CONTACT_PROPERTIES), "lastmodifieddate"
        else:
            national = number.national()
            spellings = [
                number.e164,
                number.international(),
                national,
                "".join(ch for ch in national if ch.isdigit()),
                "00" + number.digits(),
            ]
            groups = [eq("phone", s) for s in list(dict.fromkeys(spellings))[:5]]
            properties, modified = list(_COMPANY_PROPERTIES), "hs_lastmodifieddate"
        return {
            "filterGroups": groups,
            "properties": properties,
            "sorts": [{"propertyName": modified, "direction": "DESCENDING"}],
            "limit": _SEARCH_LIMIT,
        }

    def describe_search(self, number: PhoneNumber, object_types: Sequence[str]) -> dict[str, Any]:
        """The search requests `search_by_phone` sends (one per object type), bodies exact."""
        return {
            "requests": [
                {
                    "method": "POST",
                    "path": f"/crm/v3/objects/{_OBJECTS[t]}/search",
                    "body": self._phone_search_body(t, number),
                }
                for t in self._object_names(object_types)
            ],
            "cache_seconds": self.cache.ttl,
        }

    def search_by_phone(self, number: PhoneNumber, object_types: Sequence[str]) -> list[CrmRecord]:
        """Contacts (one request: both calculated numbers and phone/mobilephone = +E.164) and
        companies (one request: phone in five spellings) whose numbers may be `number`.

        `CrmRecord.phones` holds the stored values and HubSpot's E.164 readings of them, for
        the policy's `same_number` re-check (HubSpot's number search ignores the country code).
        Types are searched in the given order, and the next type is not searched once a type
        returned a record holding the caller's exact E.164 form: the policy takes the first type
        with a confirmed hit, so further searches could not change its choice. Non-empty results
        are cached for ``cache_seconds`` in this process.
        """
        records: list[CrmRecord] = []
        for object_type in self._object_names(object_types):
            key = (object_type, number.e164)
            cached = self.cache.get(key)
            if cached is not None:
                records.extend(cached)
                continue
            operation = f"searching {_OBJECTS[object_type]} by phone"
            response = self._send(
                "search",
                operation,
                self._search.do_search,
                _OBJECTS[object_type],
                self._phone_search_body(object_type, number),
            )
            found = [self._record(object_type, r) for r in _results(response, operation)]
            log.debug(
                "%s: %d %s found for %s",
                self.name,
                len(found),
                _OBJECTS[object_type],
                mask_number(number.e164),
            )
            if found:
                self.cache.put(key, found)
            records.extend(found)
            if any(number.e164 in r.phones for r in found):
                break  # a certain hit of a more specific type: the policy picks this type
        return records

    @staticmethod
    def _record(object_type: str, result: Any) -> CrmRecord:
        props: Mapping[str, Any] = result.properties or {}
        raw: tuple[str, ...]
        if object_type == "contact":
            raw = (
                "phone",
                "mobilephone",
                "hs_calculated_phone_number",
                "hs_calculated_mobile_number",
            )
            name = " ".join(str(props[p]) for p in ("firstname", "lastname") if props.get(p))
            modified = props.get("lastmodifieddate")
            parent = props.get("associatedcompanyid") or None
        else:
            raw = ("phone", "hs_calculated_phone_number")
            name = str(props.get("name") or "")
            modified = props.get("hs_lastmodifieddate")
            parent = None
        phones = tuple(dict.fromkeys(str(props[p]) for p in raw if props.get(p)))
        return CrmRecord(
            object_type=object_type,
            id=str(result.id),
            phones=phones,
            name=name,
            owner_id=str(props["hubspot_owner_id"]) if props.get("hubspot_owner_id") else None,
            modified_at=_parse_time(modified),
            parent_id=str(parent) if parent else None,
        )
