"""The HubSpot searcher: contacts and companies by phone number (one request per object type,
results cached in this process), contacts by id, and owners by e-mail (the kit's owner cache)."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from connector.adapters import (
    CrmRecord,
    OwnerCache,
    PermanentError,
    PhoneNumber,
    Rejected,
    name_words,
)
from connector.adapters.hubspot.client import HubSpotClient, _object_id, _results
from connector.adapters.hubspot.values import _parse_time
from connector.logs import mask_number

#: The package's logger: every part of the adapter logs under it.
log = logging.getLogger("connector.adapters.hubspot")

_SEARCH_LIMIT = 100  # results per phone search; the policy picks among them
_NAME_LIMIT = 20  # results per object type of a name search; a person picks among them

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
#: Object types the searcher finds, most specific first.
SEARCHABLE_OBJECTS = ("contact", "company")


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


class HubSpotSearcher:
    """Reads of the HubSpot adapter: phone searches (cached for `cache.ttl` seconds), contacts
    by id and owners by e-mail (cached as long); `name` is the target's, for log lines."""

    def __init__(self, name: str, client: HubSpotClient, cache: _RecordCache) -> None:
        self.name = name
        self.client = client
        self.cache = cache
        self.owners = OwnerCache(self.find_owner, cache.ttl, cache.clock)

    @staticmethod
    def _object_names(object_types: Sequence[str]) -> list[str]:
        unknown = [t for t in object_types if t not in SEARCHABLE_OBJECTS]
        if unknown:
            raise PermanentError(
                f"HubSpot targets search {', '.join(SEARCHABLE_OBJECTS)}, not {', '.join(unknown)}."
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

    @staticmethod
    def _name_search_body(object_type: str, words: Sequence[str]) -> dict[str, Any]:
        """Every word as a ``CONTAINS_TOKEN`` prefix (``word*``): contacts by first and last
        name (one word: in either; two or more: the first and the last word in first and last
        name either way round, or both in the last name), companies by name (every word)."""

        def token(name: str, word: str) -> dict[str, Any]:
            return {"propertyName": name, "operator": "CONTAINS_TOKEN", "value": f"{word}*"}

        if object_type == "contact":
            first, last = words[0], words[-1]
            if len(words) == 1:
                groups = [[token("firstname", first)], [token("lastname", first)]]
            else:
                groups = [
                    [token("firstname", first), token("lastname", last)],
                    [token("lastname", first), token("firstname", last)],
                    [token("lastname", first), token("lastname", last)],
                ]
            properties, modified = list(_CONTACT_PROPERTIES), "lastmodifieddate"
        else:
            groups = [[token("name", word) for word in words]]
            properties, modified = list(_COMPANY_PROPERTIES), "hs_lastmodifieddate"
        return {
            "filterGroups": [{"filters": filters} for filters in groups],
            "properties": properties,
            "sorts": [{"propertyName": modified, "direction": "DESCENDING"}],
            "limit": _NAME_LIMIT,
        }

    def search_by_name(self, name: str, object_types: Sequence[str]) -> list[CrmRecord]:
        """Contacts and companies with name words starting with the words of `name` (one
        request per type, not cached); no words (only punctuation, single letters): no request.

        Only the words of `name` reach HubSpot (`name_words`), so its wildcard cannot be typed.
        """
        words = name_words(name)
        if not words:
            return []
        return [
            record
            for object_type in self._object_names(object_types)
            for record in self._search(
                object_type, "by name", self._name_search_body(object_type, words)
            )
        ]

    def _search(self, object_type: str, by: str, body: Mapping[str, Any]) -> list[CrmRecord]:
        """One search request for `object_type` (`by` names it in errors), its records."""
        operation = f"searching {_OBJECTS[object_type]} {by}"
        response = self.client.send(
            "search", operation, self.client.search.do_search, _OBJECTS[object_type], body
        )
        return [self.record(object_type, r) for r in _results(response, operation)]

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
            found = self._search(
                object_type, "by phone", self._phone_search_body(object_type, number)
            )
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

    def resolve_owner(self, email: str) -> str | None:
        """The id of the active HubSpot owner with this e-mail address, or ``None``; answers
        are kept for ``cache_seconds`` (the planner asks for every call)."""
        return self.owners.resolve(email)

    def find_owner(self, email: str) -> str | None:
        """The id of the active owner with this e-mail address, asked of HubSpot (no cache)."""
        operation = "looking up an owner"
        page = self.client.send(
            "general", operation, self.client.owners.get_page, email=email, limit=1
        )
        results = _results(page, operation)
        return str(results[0].id) if results else None

    def read_contact(self, contact_id: str) -> CrmRecord | None:
        """The contact `contact_id`, read by id (no search lag) with its numbers; ``None`` if
        it is gone (deleted or merged)."""
        operation = "reading a contact"
        try:
            found = self.client.send(
                "general",
                operation,
                self.client.basic.get_by_id,
                "contacts",
                contact_id,
                properties=list(_CONTACT_PROPERTIES),
            )
        except Rejected as exc:
            if exc.status == 404:
                return None
            raise
        _object_id(found, operation)  # an answer naming no contact is no answer
        return self.record("contact", found)

    def first_contact_with_phone(self, number: PhoneNumber) -> CrmRecord | None:
        """The oldest contact whose ``phone`` is `number` in E.164 (the adapter writes it so)."""
        body = {
            "filterGroups": [
                {"filters": [{"propertyName": "phone", "operator": "EQ", "value": number.e164}]}
            ],
            "properties": list(_CONTACT_PROPERTIES),
            "sorts": [{"propertyName": "createdate", "direction": "ASCENDING"}],
            "limit": 1,
        }
        operation = "looking up a new contact"
        response = self.client.send(
            "search", operation, self.client.search.do_search, "contacts", body
        )
        results = _results(response, operation)
        return self.record("contact", results[0]) if results else None

    @staticmethod
    def record(object_type: str, result: Any) -> CrmRecord:
        """A search or read result as a `CrmRecord` with the numbers HubSpot stores."""
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
