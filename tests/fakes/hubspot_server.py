"""A stateful, local HubSpot CRM test server for integration tests.

``HubSpotTestServer`` runs a threaded WSGI server on ``127.0.0.1`` (ephemeral port) in a
background thread.  The real ``hubspot-api-client`` SDK talks to it over HTTP once it is
pointed at ``server.url``::

    from hubspot import HubSpot

    with HubSpotTestServer() as server:
        contact_id = server.add_contact({"firstname": "Erika", "phone": "+49 30 23125012"})
        client = HubSpot(access_token=DEFAULT_TOKEN, host=server.url)
        client.crm.contacts.basic_api.get_by_id(contact_id, _request_timeout=5)

What it emulates, and where each behaviour comes from (HubSpot developer docs unless noted):

* CRM v3 objects (``/crm/v3/objects/{type}``): create (201), read, update (PATCH), archive,
  list, batch create (201) / read / update / upsert (200), search.  Property values are
  stored as strings; datetime properties are returned like Java ``Instant.toString()``.
  Unknown properties are rejected with HubSpot's ``PROPERTY_DOESNT_EXIST`` error.
* Inline associations on create (``associations: [{to: {id}, types: [{associationCategory,
  associationTypeId}]}]``), validated against the HubSpot-defined association type ids
  (table below, identical to ``hubspot.crm.association_type.AssociationType`` in the SDK).
  Both directions are stored, as HubSpot does.  Reading: ``?associations=`` on a v3 GET and
  the v4 endpoints ``GET /crm/v4/objects/{t}/{id}/associations/{toT}``, ``PUT .../default/...``,
  ``PUT .../{toT}/{toId}`` and ``GET /crm/v4/associations/{from}/{to}/labels``.
* Search ("Search the CRM", limits section): filter groups are ORed, filters ANDed; at most
  5 groups, 6 filters per group, 18 filters in total; page size default 10, max 200; paging
  beyond 10,000 results is a 400; request bodies over 3,000 characters are a 400; objects
  become searchable only ``search_lag_seconds`` after a create/update ("It may take a few
  moments for newly created or updated CRM objects to appear in search results").
* Phone numbers: HubSpot documents that phone searches use ``hs_searchable_calculated_*``
  properties holding "only the area code and local number".  We compute the national
  significant number with ``phonenumbers`` (default region configurable, ``DE``).
* Auth: ``Authorization: Bearer <token>``; unknown → 401 ``INVALID_AUTHENTICATION``;
  missing scope → 403 ``MISSING_SCOPES`` with ``errors[0].context.requiredGranularScopes``.
  Calls, tasks and notes need the *contacts* scopes (documented in the calls/tasks guides).
* Token introspection: ``POST /oauth/v2/private-apps/get/access-token-info`` (body
  ``{"tokenKey": ...}``, answer ``{userId, hubId, appId, scopes}``) and the deprecated OAuth
  ``GET /oauth/v1/access-tokens/{token}``.  Neither needs an Authorization header here.
* Rate limits ("API usage guidelines"): a rolling ten-second budget (429 with
  ``policyName: TEN_SECONDLY_ROLLING``), a daily budget (``policyName: DAILY``) and a
  separate per-second budget for search endpoints.  Responses carry the
  ``X-HubSpot-RateLimit-*`` headers except search responses, which HubSpot documents as
  carrying none of them.  HubSpot does not document the body of a *search* 429; we send
  ``"You have reached your secondly limit."`` with ``errorType: RATE_LIMIT`` and, only if
  ``search_policy_name`` is set, a ``policyName`` (clients must not rely on it).

Known simplifications (not verified against HubSpot, kept deliberately small): one rate-limit
bucket per server (not per app / per account), the daily budget never resets by itself,
tokenisation for ``CONTAINS_TOKEN`` and the free-text ``query`` are approximations, and error
*messages* (not categories) for association and batch validation are paraphrased.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import phonenumbers
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tests.fakes.base import FakeServer, LoggedRequest

__all__ = [
    "ALL_SCOPES",
    "ASSOCIATION_TYPES",
    "DEFAULT_TOKEN",
    "Association",
    "AssociationTypeDef",
    "HubSpotRequest",
    "HubSpotTestServer",
    "TokenInfo",
    "calculated_phone_properties",
]

DEFAULT_TOKEN = "pat-eu1-00000000-0000-4000-8000-000000000000"
"""A fictional private-app token the server accepts with :data:`ALL_SCOPES`."""

JSONDict = dict[str, Any]

MAX_BATCH_INPUTS = 100
MAX_FILTER_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS_TOTAL = 18
MAX_SEARCH_PAGE = 200
DEFAULT_SEARCH_PAGE = 10
MAX_SEARCH_RESULTS = 10_000
MAX_SEARCH_BODY_CHARS = 3_000


# --------------------------------------------------------------------------------------------
# Object types, scopes and default properties
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectTypeSpec:
    """Static description of one CRM object type."""

    name: str
    singular: str
    type_id: str
    read_scopes: tuple[str, ...]
    write_scopes: tuple[str, ...]
    schema_read_scopes: tuple[str, ...]
    schema_write_scopes: tuple[str, ...]
    default_properties: tuple[str, ...]
    created_property: str
    modified_property: str

    @property
    def upper(self) -> str:
        """Return the upper-case singular name HubSpot uses in error messages (``CONTACT``)."""
        return self.singular.upper()


def _crm_scopes(kind: str, schema_kind: str) -> tuple[tuple[str, ...], ...]:
    return (
        (f"crm.objects.{kind}.read",),
        (f"crm.objects.{kind}.write",),
        (f"crm.schemas.{schema_kind}.read",),
        (f"crm.schemas.{schema_kind}.write",),
    )


def _spec(
    name: str,
    singular: str,
    type_id: str,
    scopes: tuple[tuple[str, ...], ...],
    defaults: tuple[str, ...],
    created: str,
    modified: str,
) -> ObjectTypeSpec:
    read, write, schema_read, schema_write = scopes
    return ObjectTypeSpec(
        name, singular, type_id, read, write, schema_read, schema_write, defaults, created, modified
    )


_ENGAGEMENT_DEFAULTS = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")
_TICKET_SCOPES = (("tickets",), ("tickets",), ("tickets",), ("tickets",))

OBJECT_TYPES: dict[str, ObjectTypeSpec] = {
    spec.name: spec
    for spec in (
        _spec(
            "contacts",
            "contact",
            "0-1",
            _crm_scopes("contacts", "contacts"),
            ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
            "createdate",
            "lastmodifieddate",
        ),
        _spec(
            "companies",
            "company",
            "0-2",
            _crm_scopes("companies", "companies"),
            ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
            "createdate",
            "hs_lastmodifieddate",
        ),
        _spec(
            "deals",
            "deal",
            "0-3",
            _crm_scopes("deals", "deals"),
            (
                "amount",
                "closedate",
                "createdate",
                "dealname",
                "dealstage",
                "hs_lastmodifieddate",
                "hs_object_id",
                "pipeline",
            ),
            "createdate",
            "hs_lastmodifieddate",
        ),
        _spec(
            "tickets",
            "ticket",
            "0-5",
            _TICKET_SCOPES,
            (
                "content",
                "createdate",
                "hs_lastmodifieddate",
                "hs_object_id",
                "hs_pipeline",
                "hs_pipeline_stage",
                "hs_ticket_category",
                "hs_ticket_priority",
                "subject",
            ),
            "createdate",
            "hs_lastmodifieddate",
        ),
        # Engagements use the contacts scopes (calls spec / tasks guide "Scope requirements").
        _spec(
            "calls",
            "call",
            "0-48",
            _crm_scopes("contacts", "contacts"),
            _ENGAGEMENT_DEFAULTS,
            "hs_createdate",
            "hs_lastmodifieddate",
        ),
        _spec(
            "tasks",
            "task",
            "0-27",
            _crm_scopes("contacts", "contacts"),
            _ENGAGEMENT_DEFAULTS,
            "hs_createdate",
            "hs_lastmodifieddate",
        ),
        _spec(
            "notes",
            "note",
            "0-46",
            _crm_scopes("contacts", "contacts"),
            _ENGAGEMENT_DEFAULTS,
            "hs_createdate",
            "hs_lastmodifieddate",
        ),
    )
}

OWNER_SCOPES = ("crm.objects.owners.read",)

ALL_SCOPES: frozenset[str] = (
    frozenset(
        scope
        for spec in OBJECT_TYPES.values()
        for scopes in (
            spec.read_scopes,
            spec.write_scopes,
            spec.schema_read_scopes,
            spec.schema_write_scopes,
        )
        for scope in scopes
    )
    | frozenset(OWNER_SCOPES)
    | {"oauth"}
)
"""Every scope this server ever asks for."""

_TYPE_ALIASES: dict[str, str] = {}
for _s in OBJECT_TYPES.values():
    for _alias in (_s.name, _s.singular, _s.type_id):
        _TYPE_ALIASES[_alias.lower()] = _s.name


def _object_type_or_none(value: str) -> ObjectTypeSpec | None:
    name = _TYPE_ALIASES.get(value.lower())
    return OBJECT_TYPES[name] if name else None


# --------------------------------------------------------------------------------------------
# Association types (HubSpot-defined).  Same ids as hubspot.crm.association_type.AssociationType.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssociationTypeDef:
    """One directed HubSpot-defined association type."""

    from_type: str
    to_type: str
    type_id: int
    inverse_type_id: int
    label: str | None
    name: str

    @property
    def is_default(self) -> bool:
        """Return True for the unlabeled type that exists between every associated pair."""
        return self.label is None


# (from, to, type id, inverse type id, label).  Label "Primary" marks primary associations.
_PAIRS: tuple[tuple[str, str, int, int, str | None], ...] = (
    ("contacts", "companies", 279, 280, None),
    ("contacts", "companies", 1, 2, "Primary"),
    ("contacts", "deals", 4, 3, None),
    ("contacts", "tickets", 15, 16, None),
    ("contacts", "calls", 193, 194, None),
    ("contacts", "notes", 201, 202, None),
    ("contacts", "tasks", 203, 204, None),
    ("companies", "deals", 342, 341, None),
    ("companies", "deals", 6, 5, "Primary"),
    ("companies", "tickets", 340, 339, None),
    ("companies", "tickets", 25, 26, "Primary"),
    ("companies", "calls", 181, 182, None),
    ("companies", "notes", 189, 190, None),
    ("companies", "tasks", 191, 192, None),
    ("deals", "tickets", 27, 28, None),
    ("deals", "calls", 205, 206, None),
    ("deals", "notes", 213, 214, None),
    ("deals", "tasks", 215, 216, None),
    ("tickets", "calls", 219, 220, None),
    ("tickets", "notes", 227, 228, None),
    ("tickets", "tasks", 229, 230, None),
)


def _build_association_types() -> dict[tuple[str, str], tuple[AssociationTypeDef, ...]]:
    has_primary = {(a, b) for a, b, _, _, label in _PAIRS if label} | {
        (b, a) for a, b, _, _, label in _PAIRS if label
    }
    table: dict[tuple[str, str], list[AssociationTypeDef]] = {}
    for from_type, to_type, type_id, inverse_id, label in _PAIRS:
        for src, dst, tid, inv in (
            (from_type, to_type, type_id, inverse_id),
            (to_type, from_type, inverse_id, type_id),
        ):
            base = f"{OBJECT_TYPES[src].singular}_to_{OBJECT_TYPES[dst].singular}"
            if label is None and (src, dst) in has_primary:
                base += "_unlabeled"
            table.setdefault((src, dst), []).append(
                AssociationTypeDef(src, dst, tid, inv, label, base)
            )
    return {pair: tuple(defs) for pair, defs in table.items()}


ASSOCIATION_TYPES: dict[tuple[str, str], tuple[AssociationTypeDef, ...]] = (
    _build_association_types()
)
"""HubSpot-defined association types keyed by ``(from_type, to_type)`` (plural names)."""


def _association_type(from_type: str, type_id: int) -> AssociationTypeDef | None:
    for (src, _dst), defs in ASSOCIATION_TYPES.items():
        if src != from_type:
            continue
        for definition in defs:
            if definition.type_id == type_id:
                return definition
    return None


def _default_association_type(from_type: str, to_type: str) -> AssociationTypeDef | None:
    for definition in ASSOCIATION_TYPES.get((from_type, to_type), ()):
        if definition.is_default:
            return definition
    return None


@dataclass(frozen=True)
class Association:
    """A stored association edge, one direction of a HubSpot association."""

    from_type: str
    from_id: str
    to_type: str
    to_id: str
    type_id: int
    category: str = "HUBSPOT_DEFINED"


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


@dataclass
class PropertyDefinition:
    """A CRM property definition (a subset of HubSpot's property model)."""

    name: str
    label: str
    type: str = "string"
    field_type: str = "text"
    group_name: str = "information"
    options: tuple[str, ...] = ()
    strict_options: bool = False
    unique: bool = False
    read_only: bool = False
    calculated: bool = False
    hubspot_defined: bool = True
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> JSONDict:
        """Return the property in the shape of ``GET /crm/v3/properties/{type}/{name}``."""
        stamp = _iso(self.created_at)
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": "",
            "groupName": self.group_name,
            "options": [
                {"label": opt, "value": opt, "displayOrder": idx, "hidden": False}
                for idx, opt in enumerate(self.options)
            ],
            "displayOrder": -1,
            "calculated": self.calculated,
            "externalOptions": False,
            "hasUniqueValue": self.unique,
            "hidden": False,
            "hubspotDefined": self.hubspot_defined,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
            "formField": not self.read_only,
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
        }


def _text(name: str, label: str | None = None, field_type: str = "text") -> PropertyDefinition:
    return PropertyDefinition(name, label or name, field_type=field_type)


def _enum(name: str, options: Sequence[str], strict: bool = True) -> PropertyDefinition:
    return PropertyDefinition(
        name,
        name,
        type="enumeration",
        field_type="select",
        options=tuple(options),
        strict_options=strict,
    )


def _number(name: str) -> PropertyDefinition:
    return PropertyDefinition(name, name, type="number", field_type="number")


def _datetime(name: str, read_only: bool = False) -> PropertyDefinition:
    return PropertyDefinition(name, name, type="datetime", field_type="date", read_only=read_only)


def _calculated(name: str, type_: str = "string") -> PropertyDefinition:
    return PropertyDefinition(
        name,
        name,
        type=type_,
        field_type="calculation_equation",
        read_only=True,
        calculated=True,
    )


def _owner() -> PropertyDefinition:
    return PropertyDefinition("hubspot_owner_id", "Owner", type="enumeration", field_type="select")


_PHONE_CALCULATED = (
    "hs_searchable_calculated_phone_number",
    "hs_calculated_phone_number",
)
_MOBILE_CALCULATED = (
    "hs_searchable_calculated_mobile_number",
    "hs_calculated_mobile_number",
)

_CALL_STATUSES = (
    "BUSY",
    "CALLING_CRM_USER",
    "CANCELED",
    "COMPLETED",
    "CONNECTING",
    "FAILED",
    "IN_PROGRESS",
    "MISSED",
    "NO_ANSWER",
    "QUEUED",
    "RINGING",
)


def _default_properties(object_type: str) -> list[PropertyDefinition]:
    spec = OBJECT_TYPES[object_type]
    common: list[PropertyDefinition] = [
        _datetime(spec.created_property),
        _datetime(spec.modified_property, read_only=True),
        _calculated("hs_object_id", "number"),
        _owner(),
    ]
    specific: dict[str, list[PropertyDefinition]] = {
        "contacts": [
            _text("email", "Email"),
            _text("firstname", "First Name"),
            _text("lastname", "Last Name"),
            _text("phone", "Phone Number", "phonenumber"),
            _text("mobilephone", "Mobile Phone Number", "phonenumber"),
            _text("company", "Company Name"),
            _text("jobtitle", "Job Title"),
            _text("city"),
            _text("country"),
            _enum(
                "lifecyclestage",
                (
                    "subscriber",
                    "lead",
                    "marketingqualifiedlead",
                    "salesqualifiedlead",
                    "opportunity",
                    "customer",
                    "evangelist",
                    "other",
                ),
                strict=False,
            ),
            *(_calculated(name) for name in _PHONE_CALCULATED + _MOBILE_CALCULATED),
        ],
        "companies": [
            _text("name", "Company name"),
            _text("domain", "Company Domain Name"),
            _text("phone", "Phone Number", "phonenumber"),
            _text("website"),
            _text("city"),
            _text("country"),
            _text("industry"),
            *(_calculated(name) for name in _PHONE_CALCULATED),
        ],
        "deals": [
            _text("dealname", "Deal Name"),
            _number("amount"),
            _datetime("closedate"),
            _enum("pipeline", ("default",), strict=False),
            _enum(
                "dealstage",
                (
                    "appointmentscheduled",
                    "qualifiedtobuy",
                    "presentationscheduled",
                    "decisionmakerboughtin",
                    "contractsent",
                    "closedwon",
                    "closedlost",
                ),
                strict=False,
            ),
        ],
        "tickets": [
            _text("subject"),
            _text("content", field_type="textarea"),
            _enum("hs_pipeline", ("0",), strict=False),
            _enum("hs_pipeline_stage", ("1", "2", "3", "4"), strict=False),
            _enum("hs_ticket_priority", ("LOW", "MEDIUM", "HIGH", "URGENT"), strict=False),
            _enum("hs_ticket_category", (), strict=False),
        ],
        "calls": [
            _datetime("hs_timestamp"),
            _text("hs_call_title"),
            _text("hs_call_body", field_type="html"),
            _enum("hs_call_direction", ("INBOUND", "OUTBOUND")),
            _enum("hs_call_status", _CALL_STATUSES),
            _number("hs_call_duration"),
            _text("hs_call_from_number"),
            _text("hs_call_to_number"),
            _text("hs_call_disposition"),
            _text("hs_call_recording_url"),
            _text("hs_call_callee_object_id"),
            _text("hs_call_callee_object_type"),
            _text("hs_activity_type"),
        ],
        "tasks": [
            _datetime("hs_timestamp"),
            _text("hs_task_subject"),
            _text("hs_task_body", field_type="html"),
            _enum(
                "hs_task_status", ("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED")
            ),
            _enum("hs_task_priority", ("NONE", "LOW", "MEDIUM", "HIGH")),
            _enum("hs_task_type", ("CALL", "EMAIL", "TODO", "LINKED_IN"), strict=False),
            _number("hs_task_reminders"),
        ],
        "notes": [
            _datetime("hs_timestamp"),
            _text("hs_note_body", field_type="html"),
            _text("hs_attachment_ids"),
        ],
    }
    return common + specific[object_type]


# Properties usable as ``idProperty`` for upserts even though they are not flagged unique.
_UPSERT_KEYS: dict[str, frozenset[str]] = {"contacts": frozenset({"email"})}


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    """Format like Java ``Instant.toString()``: no fraction when milliseconds are zero."""
    moment = moment.astimezone(UTC)
    millis = moment.microsecond // 1000
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{millis:03d}Z" if millis else f"{base}Z"


def _parse_datetime(value: str) -> datetime | None:
    """Parse epoch milliseconds or ISO 8601 (date or date-time) into an aware datetime."""
    text = value.strip()
    if re.fullmatch(r"-?\d+", text):
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _epoch_millis(value: str) -> float | None:
    parsed = _parse_datetime(value)
    return parsed.timestamp() * 1000 if parsed else None


def _float_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def calculated_phone_properties(
    raw: str, prefix: str = "phone", default_region: str = "DE"
) -> dict[str, str]:
    """Compute HubSpot's calculated phone properties for one phone value.

    ``prefix`` is ``"phone"`` (for ``phone``) or ``"mobile"`` (for ``mobilephone``).  Returns
    ``hs_searchable_calculated_<prefix>_number`` (national significant number: no country
    code, no trunk prefix) and ``hs_calculated_<prefix>_number`` (E.164), or ``{}`` when the
    value cannot be parsed as a phone number.
    """
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        return {}
    return {
        f"hs_searchable_calculated_{prefix}_number": phonenumbers.national_significant_number(
            number
        ),
        f"hs_calculated_{prefix}_number": phonenumbers.format_number(
            number, phonenumbers.PhoneNumberFormat.E164
        ),
    }


@dataclass(frozen=True)
class TokenInfo:
    """An access token the server accepts, with the metadata introspection returns."""

    token: str
    scopes: frozenset[str]
    kind: str = "private_app"
    hub_id: int = 9_999_001
    app_id: int = 4_242_001
    user_id: int = 7_000_001
    user_email: str = "integration.user@example.com"


@dataclass(frozen=True, kw_only=True)
class HubSpotRequest(LoggedRequest):
    """One request as the server saw it, with the token, the endpoint and the rate budget
    (``general``, ``search``) it was counted against."""

    token: str | None = None
    endpoint: str | None = None
    budget: str | None = None

    def property_values(self) -> list[tuple[str, Any]]:
        """Return every ``(property name, raw JSON value)`` written by this request's body."""
        found: list[tuple[str, Any]] = []
        bodies: list[Any] = [self.json]
        if isinstance(self.json, Mapping) and isinstance(self.json.get("inputs"), list):
            bodies.extend(self.json["inputs"])
        for body in bodies:
            if isinstance(body, Mapping) and isinstance(body.get("properties"), Mapping):
                found.extend(body["properties"].items())
        return found


@dataclass
class _StoredObject:
    object_type: str
    id: str
    properties: dict[str, str]
    created_at: datetime
    updated_at: datetime
    archived: bool = False
    # (clock time from which the snapshot is searchable, property snapshot)
    index_versions: list[tuple[float, dict[str, str]]] = field(default_factory=list)

    def indexed_properties(self, now: float) -> dict[str, str] | None:
        visible = [snapshot for at, snapshot in self.index_versions if at <= now]
        return visible[-1] if visible else None


@dataclass
class _Owner:
    id: str
    email: str
    first_name: str
    last_name: str
    user_id: int
    archived: bool
    teams: list[JSONDict]
    created_at: datetime

    def to_json(self) -> JSONDict:
        stamp = _iso(self.created_at)
        return {
            "id": self.id,
            "email": self.email,
            "type": "PERSON",
            "firstName": self.first_name,
            "lastName": self.last_name,
            "userId": self.user_id,
            "userIdIncludingInactive": self.user_id,
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": self.archived,
            "teams": self.teams,
        }


@dataclass
class _Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class _ApiError(Exception):
    """Raised inside handlers to answer with a HubSpot-style error."""

    def __init__(self, status: int, body: JSONDict) -> None:
        super().__init__(body.get("message", ""))
        self.status = status
        self.body = body


class _SlidingWindow:
    """Counts admitted requests in a rolling time window."""

    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit = limit
        self.window = window_seconds
        self.hits: deque[float] = deque()

    def _prune(self, now: float) -> None:
        while self.hits and self.hits[0] <= now - self.window:
            self.hits.popleft()

    def try_acquire(self, now: float) -> bool:
        self._prune(now)
        if len(self.hits) >= self.limit:
            return False
        self.hits.append(now)
        return True

    def used(self, now: float, window: float | None = None) -> int:
        self._prune(now)
        if window is None:
            return len(self.hits)
        return sum(1 for hit in self.hits if hit > now - window)


def _correlation_id() -> str:
    return str(uuid.uuid4())


def _error(message: str, category: str, **extra: Any) -> JSONDict:
    return {
        "status": "error",
        "message": message,
        "correlationId": _correlation_id(),
        **extra,
        "category": category,
    }


def _validation_error(message: str, **extra: Any) -> _ApiError:
    return _ApiError(400, _error(message, "VALIDATION_ERROR", **extra))


def _auth_error() -> JSONDict:
    return _error(
        "Authentication credentials not found. This API supports OAuth 2.0 authentication and "
        "you can find more details at https://developers.hubspot.com/docs/methods/auth/"
        "oauth-overview",
        "INVALID_AUTHENTICATION",
    )


def _missing_scopes_error(scopes: Iterable[str]) -> JSONDict:
    return _error(
        "This app hasn't been granted all required scopes to make this call. Read more about "
        "required scopes here: https://developers.hubspot.com/scopes.",
        "MISSING_SCOPES",
        errors=[
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": sorted(scopes)},
            }
        ],
        links={"scopes": "https://developers.hubspot.com/scopes"},
    )


def _rate_limit_error(message: str, policy_name: str | None) -> JSONDict:
    body: JSONDict = {
        "status": "error",
        "message": message,
        "errorType": "RATE_LIMIT",
        "correlationId": _correlation_id(),
    }
    if policy_name:
        body["policyName"] = policy_name
    body["requestId"] = uuid.uuid4().hex
    return body


def _default_fault_body(status: int) -> JSONDict:
    if status == 429:
        return _rate_limit_error(
            "You have reached your ten_secondly_rolling limit.", "TEN_SECONDLY_ROLLING"
        )
    if status == 401:
        return _auth_error()
    if status == 403:
        return _missing_scopes_error(["crm.objects.contacts.write"])
    if status == 404:
        return _error("resource not found", "OBJECT_NOT_FOUND")
    if status >= 500:
        return _error("internal error", "INTERNAL_ERROR")
    return _error("injected failure", "VALIDATION_ERROR")


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


_URL_MAP = Map(
    [
        Rule("/oauth/v1/access-tokens/<token>", endpoint="oauth_token_info", methods=["GET"]),
        Rule(
            "/oauth/v2/private-apps/get/access-token-info",
            endpoint="private_app_token_info",
            methods=["POST"],
        ),
        Rule("/crm/v3/objects/<object_type>", endpoint="create", methods=["POST"]),
        Rule("/crm/v3/objects/<object_type>", endpoint="list", methods=["GET"]),
        Rule("/crm/v3/objects/<object_type>/search", endpoint="search", methods=["POST"]),
        Rule("/crm/v3/objects/<object_type>/batch/<operation>", endpoint="batch", methods=["POST"]),
        Rule("/crm/v3/objects/<object_type>/<object_id>", endpoint="read", methods=["GET"]),
        Rule("/crm/v3/objects/<object_type>/<object_id>", endpoint="update", methods=["PATCH"]),
        Rule("/crm/v3/objects/<object_type>/<object_id>", endpoint="archive", methods=["DELETE"]),
        Rule("/crm/v3/owners/", endpoint="list_owners", methods=["GET"]),
        Rule("/crm/v3/owners/<owner_id>", endpoint="read_owner", methods=["GET"]),
        Rule(
            "/crm/v3/pipelines/<object_type>/<pipeline_id>",
            endpoint="read_pipeline",
            methods=["GET"],
        ),
        Rule("/crm/v3/properties/<object_type>", endpoint="list_properties", methods=["GET"]),
        Rule("/crm/v3/properties/<object_type>", endpoint="create_property", methods=["POST"]),
        Rule(
            "/crm/v3/properties/<object_type>/<property_name>",
            endpoint="read_property",
            methods=["GET"],
        ),
        Rule(
            "/crm/v4/objects/<object_type>/<object_id>/associations/<to_object_type>",
            endpoint="v4_list",
            methods=["GET"],
        ),
        Rule(
            "/crm/v4/objects/<object_type>/<object_id>/associations/default/"
            "<to_object_type>/<to_object_id>",
            endpoint="v4_create_default",
            methods=["PUT"],
        ),
        Rule(
            "/crm/v4/objects/<object_type>/<object_id>/associations/<to_object_type>/"
            "<to_object_id>",
            endpoint="v4_create",
            methods=["PUT"],
        ),
        Rule(
            "/crm/v4/associations/<object_type>/<to_object_type>/labels",
            endpoint="v4_labels",
            methods=["GET"],
        ),
    ],
    strict_slashes=False,
)

#: The pipeline and stage properties of the object types that have pipelines.
_PIPELINE_PROPERTIES = {
    "tickets": ("hs_pipeline", "hs_pipeline_stage"),
    "deals": ("pipeline", "dealstage"),
}

_UNAUTHENTICATED_ENDPOINTS = frozenset({"oauth_token_info", "private_app_token_info"})
_WRITE_ENDPOINTS = frozenset({"create", "update", "archive", "v4_create", "v4_create_default"})


class HubSpotTestServer(FakeServer[HubSpotRequest]):
    """A local, stateful stand-in for HubSpot's CRM API (see the module docstring).

    Use it as a context manager (``with HubSpotTestServer() as server:``) or call
    :meth:`start` / :meth:`stop` yourself.  All seeding and inspection helpers are
    thread-safe and bypass authentication, rate limits and the request log.  Injected
    failures (:meth:`fail_next`) happen after authentication and do not consume rate budget;
    a ``None`` body gives a HubSpot-style error body for the status.
    """

    name = "hubspot-test-server"

    def __init__(
        self,
        *,
        tokens: Mapping[str, Iterable[str]] | None = None,
        ten_second_limit: int = 100,
        search_per_second_limit: int = 5,
        daily_limit: int = 250_000,
        search_lag_seconds: float = 0.0,
        default_region: str = "DE",
        search_policy_name: str | None = None,
        retry_after_seconds: int | None = None,
        strict_properties: bool = True,
        clock: Callable[[], float] = time.monotonic,
        host: str = "127.0.0.1",
    ) -> None:
        """Configure the server; nothing listens until :meth:`start`.

        Args:
            tokens: token → scopes.  Defaults to ``{DEFAULT_TOKEN: ALL_SCOPES}``.
            ten_second_limit: requests per rolling 10 s (HubSpot: 100 Free/Starter, 190
                Professional/Enterprise, 250 with the API limit increase).
            search_per_second_limit: search requests per second (HubSpot: 5 per account).
            daily_limit: requests per day (HubSpot: 250,000 / 625,000 / 1,000,000).
            search_lag_seconds: delay before created/updated objects become searchable.
            default_region: region for phone numbers written without a country code.
            search_policy_name: ``policyName`` put into search 429 bodies (``None`` omits it;
                HubSpot does not document one).
            retry_after_seconds: if set, 429 responses carry ``Retry-After`` (HubSpot does not
                document this header; note that urllib3's default retry honours it for GETs).
            strict_properties: reject unknown/read-only properties and bad values like HubSpot.
            clock: monotonic time source for rate windows and search lag (``ManualClock``).
            host: interface to bind; keep the loopback default.
        """
        self.ten_second_limit = ten_second_limit
        self.search_per_second_limit = search_per_second_limit
        self.daily_limit = daily_limit
        self.search_lag_seconds = search_lag_seconds
        self.default_region = default_region
        self.search_policy_name = search_policy_name
        self.retry_after_seconds = retry_after_seconds
        self.strict_properties = strict_properties
        super().__init__(clock=clock, host=host)
        self._tokens: dict[str, TokenInfo] = {}
        for token, scopes in (tokens or {DEFAULT_TOKEN: ALL_SCOPES}).items():
            self.add_token(token, scopes)

        self._ids = iter(range(501, 10**12))
        self._objects: dict[str, dict[str, _StoredObject]] = {name: {} for name in OBJECT_TYPES}
        self._associations: list[Association] = []
        self._owners: dict[str, _Owner] = {}
        self._properties: dict[str, dict[str, PropertyDefinition]] = {
            name: {prop.name: prop for prop in _default_properties(name)} for name in OBJECT_TYPES
        }

        self._ten_second = _SlidingWindow(ten_second_limit, 10.0)
        self._search = _SlidingWindow(search_per_second_limit, 1.0)
        self._daily_used = 0

    # ---------------------------------------------------------------- configuration helpers

    def add_token(self, token: str, scopes: Iterable[str], *, kind: str = "private_app") -> None:
        """Accept ``token`` with exactly ``scopes``; ``kind`` is ``private_app`` or ``oauth``.

        OAuth tokens get no ``X-HubSpot-RateLimit-Daily*`` headers, as documented.
        """
        with self._lock:
            self._tokens[token] = TokenInfo(token, frozenset(scopes), kind)

    def revoke_token(self, token: str) -> None:
        """Stop accepting ``token`` (subsequent requests get 401)."""
        with self._lock:
            self._tokens.pop(token, None)

    def exhaust_daily(self) -> None:
        """Use up the daily budget: every counted request now gets 429 ``DAILY``."""
        with self._lock:
            self._daily_used = self.daily_limit

    def reset_daily(self) -> None:
        """Reset the daily budget (HubSpot resets at midnight in the account's time zone)."""
        with self._lock:
            self._daily_used = 0

    def reset_rate_limits(self) -> None:
        """Empty the ten-second and search windows and reset the daily budget."""
        with self._lock:
            self._ten_second.hits.clear()
            self._search.hits.clear()
            self._daily_used = 0

    # ---------------------------------------------------------------- seeding helpers

    def add_object(
        self,
        object_type: str,
        properties: Mapping[str, Any] | None = None,
        *,
        associations: Iterable[tuple[str, str]] = (),
        searchable: bool = True,
    ) -> str:
        """Store an object directly and return its id.

        ``associations`` are ``(to_type, to_id)`` pairs linked with the default type.
        ``searchable=False`` applies the configured search lag as if created via the API.
        """
        spec = self._spec(object_type)
        values = {name: self._coerce(value) for name, value in (properties or {}).items()}
        with self._lock:
            record = self._insert(spec, values, lagged=not searchable)
            for to_type, to_id in associations:
                self.associate(spec.name, record.id, to_type, to_id)
            return record.id

    def add_contact(self, properties: Mapping[str, Any] | None = None, **options: Any) -> str:
        """Store a contact (see :meth:`add_object` for ``options``) and return its id."""
        return self.add_object("contacts", properties, **options)

    def add_company(self, properties: Mapping[str, Any] | None = None, **options: Any) -> str:
        """Store a company (see :meth:`add_object` for ``options``) and return its id."""
        return self.add_object("companies", properties, **options)

    def add_deal(
        self,
        properties: Mapping[str, Any] | None = None,
        *,
        contact_ids: Iterable[str] = (),
        company_ids: Iterable[str] = (),
        dealstage: str = "appointmentscheduled",
        pipeline: str = "default",
        searchable: bool = True,
    ) -> str:
        """Store a deal in ``dealstage``, associated with the given contacts/companies."""
        values: dict[str, Any] = {"dealstage": dealstage, "pipeline": pipeline}
        values.update(properties or {})
        links = [("contacts", cid) for cid in contact_ids]
        links += [("companies", cid) for cid in company_ids]
        return self.add_object("deals", values, associations=links, searchable=searchable)

    def add_owner(
        self,
        owner_id: str,
        email: str,
        first_name: str = "",
        last_name: str = "",
        *,
        user_id: int | None = None,
        archived: bool = False,
        teams: Sequence[Mapping[str, Any]] = (),
    ) -> JSONDict:
        """Register an owner (a HubSpot user) and return its API representation."""
        owner = _Owner(
            str(owner_id),
            email,
            first_name,
            last_name,
            user_id if user_id is not None else 9_000_000 + len(self._owners),
            archived,
            [dict(team) for team in teams],
            datetime.now(UTC),
        )
        with self._lock:
            self._owners[owner.id] = owner
        return owner.to_json()

    def add_property(
        self,
        object_type: str,
        name: str,
        unique: bool = False,
        *,
        type: str = "string",
        field_type: str = "text",
        label: str | None = None,
        options: Sequence[str] = (),
    ) -> JSONDict:
        """Define a custom property (``unique=True`` makes it usable as upsert ``idProperty``)."""
        spec = self._spec(object_type)
        definition = PropertyDefinition(
            name,
            label or name,
            type=type,
            field_type=field_type,
            group_name="custom",
            options=tuple(options),
            strict_options=bool(options),
            unique=unique,
            hubspot_defined=False,
        )
        with self._lock:
            self._properties[spec.name][name] = definition
        return definition.to_json()

    def associate(
        self, from_type: str, from_id: str, to_type: str, to_id: str, type_id: int | None = None
    ) -> None:
        """Associate two stored objects (both directions); default type if ``type_id`` is None."""
        src, dst = self._spec(from_type).name, self._spec(to_type).name
        if type_id is None:
            definition = _default_association_type(src, dst)
        else:
            definition = _association_type(src, type_id)
        if definition is None or definition.to_type != dst:
            raise ValueError(f"no association type {type_id} from {src} to {dst}")
        with self._lock:
            self._add_association(definition, str(from_id), str(to_id))

    # ---------------------------------------------------------------- inspection helpers

    def objects(self, object_type: str, *, include_archived: bool = False) -> list[JSONDict]:
        """Return all stored objects of a type with all their properties, oldest first."""
        spec = self._spec(object_type)
        with self._lock:
            return [
                self._object_json(spec, record, record.properties, None, all_properties=True)
                for record in self._objects[spec.name].values()
                if include_archived or not record.archived
            ]

    def get_object(self, object_type: str, object_id: str) -> JSONDict | None:
        """Return one stored object (all properties) or ``None``."""
        spec = self._spec(object_type)
        with self._lock:
            record = self._objects[spec.name].get(str(object_id))
            if record is None:
                return None
            return self._object_json(spec, record, record.properties, None, all_properties=True)

    def associations(self, from_type: str, from_id: str) -> list[Association]:
        """Return every association edge starting at the given object (both directions kept)."""
        src = self._spec(from_type).name
        with self._lock:
            return [a for a in self._associations if a.from_type == src and a.from_id == from_id]

    def rate_limited_requests(self) -> list[HubSpotRequest]:
        """Return requests the server rejected for being over budget (not injected 429s)."""
        return [e for e in self.request_log if e.status == 429 and not e.injected]

    def non_string_property_values(self) -> list[tuple[HubSpotRequest, str, str]]:
        """Return ``(request, property, JSON type)`` for every property value sent as non-string."""
        found: list[tuple[HubSpotRequest, str, str]] = []
        for entry in self.request_log:
            for name, value in entry.property_values():
                if not isinstance(value, str):
                    found.append((entry, name, type(value).__name__))
        return found

    # ---------------------------------------------------------------- WSGI plumbing

    def _default_fault_body(self, status: int) -> JSONDict:
        return _default_fault_body(status)

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        reply, entry = self._handle(request)
        self._log_request(entry)
        self._hold(entry.delayed_seconds)
        if entry.lost:
            return self._lose_answer(environ, start_response)
        if reply.body is None or isinstance(reply.body, bytes | str):
            data, content_type = reply.body or b"", "text/plain;charset=utf-8"
        else:
            data, content_type = json.dumps(reply.body), "application/json;charset=utf-8"
        response = Response(data, status=reply.status, content_type=content_type)
        response.headers.update(reply.headers)
        response.headers.setdefault("X-HubSpot-Correlation-Id", _correlation_id())
        result: Iterable[bytes] = response(environ, start_response)
        return result

    def _handle(self, request: Request) -> tuple[_Reply, HubSpotRequest]:
        method, path = request.method.upper(), request.path
        query = {key: request.args.getlist(key) for key in request.args}
        raw = request.get_data()
        body: Any = None
        body_error = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body_error = True
        token = self._bearer_token(request)
        entry = HubSpotRequest(
            method=method,
            path=path,
            query=query,
            json=body,
            status=0,
            time=time.time(),
            kind="api",
            token=token,
        )

        try:
            endpoint, args = _URL_MAP.bind("localhost").match(path, method=method)
        except MethodNotAllowed:
            endpoint, args = None, {}
            reply = _Reply(405, _error("Method not allowed", "VALIDATION_ERROR"))
        except NotFound:
            endpoint, args = None, {}
            reply = _Reply(404, _error(f"Unknown path {path}", "OBJECT_NOT_FOUND"))
        else:
            reply = _Reply(0)
        entry = replace(entry, endpoint=endpoint)

        with self._lock:
            if endpoint in _UNAUTHENTICATED_ENDPOINTS:
                reply = self._safe_dispatch(endpoint, args, request, body, body_error, raw)
                return reply, replace(entry, status=reply.status, kind="auth")
            info = self._tokens.get(token or "")
            if info is None:
                reply = _Reply(401, _auth_error())
                return reply, replace(entry, status=401)
            fault = self._take_fault(method, path)
            if fault is not None:
                reply = _Reply(fault.status, fault.body, dict(fault.headers))
                return reply, replace(entry, status=fault.status, injected=True)
            if endpoint is None:
                return reply, replace(entry, status=reply.status)
            budget, limited = self._admit(endpoint, info)
            entry = replace(entry, budget=budget)
            if limited is not None:
                return limited, replace(entry, status=limited.status)
            try:
                self._check_scopes(endpoint, args, info)
            except _ApiError as error:
                reply = _Reply(error.status, error.body)
            else:
                reply = self._safe_dispatch(endpoint, args, request, body, body_error, raw)
            if budget == "general":
                reply.headers.update(self._rate_headers(info))
            seconds = self._take_delay(method, path)
            lost = self._take_loss(method, path)
            return reply, replace(entry, status=reply.status, delayed_seconds=seconds, lost=lost)

    @staticmethod
    def _bearer_token(request: Request) -> str | None:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" and value.strip() else None

    # ---------------------------------------------------------------- rate limits and scopes

    def _admit(self, endpoint: str, info: TokenInfo) -> tuple[str, _Reply | None]:
        now = self._clock()
        self._ten_second.limit = self.ten_second_limit  # the public attributes stay live
        self._search.limit = self.search_per_second_limit
        budget = "search" if endpoint == "search" else "general"
        retry = (
            {"Retry-After": str(self.retry_after_seconds)}
            if self.retry_after_seconds is not None
            else {}
        )
        if self._daily_used >= self.daily_limit:
            body = _rate_limit_error("You have reached your daily limit.", "DAILY")
            headers = {**self._rate_headers(info), **retry} if budget == "general" else retry
            return budget, _Reply(429, body, headers)
        if budget == "search":
            if not self._search.try_acquire(now):
                body = _rate_limit_error(
                    "You have reached your secondly limit.", self.search_policy_name
                )
                return budget, _Reply(429, body, dict(retry))
        elif not self._ten_second.try_acquire(now):
            body = _rate_limit_error(
                "You have reached your ten_secondly_rolling limit.", "TEN_SECONDLY_ROLLING"
            )
            return budget, _Reply(429, body, {**self._rate_headers(info), **retry})
        self._daily_used += 1
        return budget, None

    def _rate_headers(self, info: TokenInfo) -> dict[str, str]:
        now = self._clock()
        secondly = max(1, math.ceil(self.ten_second_limit / 10))
        headers = {
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": str(self.ten_second_limit),
            "X-HubSpot-RateLimit-Remaining": str(
                max(0, self.ten_second_limit - self._ten_second.used(now))
            ),
            "X-HubSpot-RateLimit-Secondly": str(secondly),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(
                max(0, secondly - self._ten_second.used(now, 1.0))
            ),
        }
        if info.kind != "oauth":
            headers["X-HubSpot-RateLimit-Daily"] = str(self.daily_limit)
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(
                max(0, self.daily_limit - self._daily_used)
            )
        return headers

    def _check_scopes(self, endpoint: str, args: Mapping[str, str], info: TokenInfo) -> None:
        if endpoint in ("list_owners", "read_owner"):
            needed: tuple[str, ...] = OWNER_SCOPES
        else:
            spec = self._spec_or_400(args["object_type"])
            if endpoint in ("list_properties", "read_property"):
                needed = spec.schema_read_scopes + spec.read_scopes
            elif endpoint == "create_property":
                needed = spec.schema_write_scopes
            elif endpoint in _WRITE_ENDPOINTS or (
                endpoint == "batch" and args.get("operation") != "read"
            ):
                needed = spec.write_scopes
            else:
                needed = spec.read_scopes
        if not info.scopes.intersection(needed):
            raise _ApiError(403, _missing_scopes_error(needed))

    # ---------------------------------------------------------------- dispatch

    def _safe_dispatch(
        self,
        endpoint: str,
        args: Mapping[str, str],
        request: Request,
        body: Any,
        body_error: bool,
        raw: bytes,
    ) -> _Reply:
        """Run a handler; HubSpot-style errors become replies, bugs become JSON 500s."""
        try:
            return self._dispatch(endpoint, args, request, body, body_error, raw)
        except _ApiError as error:
            return _Reply(error.status, error.body)
        except Exception as error:  # a bug in this server: answer loudly, don't hang
            return _Reply(500, _error(f"HubSpotTestServer bug: {error!r}", "INTERNAL_ERROR"))

    def _dispatch(
        self,
        endpoint: str,
        args: Mapping[str, str],
        request: Request,
        body: Any,
        body_error: bool,
        raw: bytes,
    ) -> _Reply:
        if body_error:
            raise _validation_error("Invalid input JSON: the request body is not valid JSON")
        query = request.args
        if endpoint == "oauth_token_info":
            return self._oauth_token_info(args["token"])
        if endpoint == "private_app_token_info":
            return self._private_app_token_info(body)
        if endpoint in ("list_owners", "read_owner"):
            if endpoint == "list_owners":
                return self._list_owners(
                    query.get("email"),
                    query.get("after"),
                    query.get("limit"),
                    query.get("archived"),
                )
            return self._read_owner(
                args["owner_id"], query.get("idProperty"), query.get("archived")
            )
        spec = self._spec_or_400(args["object_type"])
        properties = [p for value in query.getlist("properties") for p in value.split(",") if p]
        if endpoint == "create":
            return _Reply(201, self._create_from_input(spec, self._require_object(body)))
        if endpoint == "list":
            return self._list_objects(spec, query.get("after"), query.get("limit"), properties)
        if endpoint == "read":
            associations = [
                a for value in query.getlist("associations") for a in value.split(",") if a
            ]
            return self._read(
                spec,
                args["object_id"],
                properties,
                associations,
                query.get("idProperty"),
                query.get("archived") == "true",
            )
        if endpoint == "update":
            return self._update(
                spec, args["object_id"], self._require_object(body), query.get("idProperty")
            )
        if endpoint == "archive":
            record = self._find(spec, args["object_id"], None)
            record.archived = True
            return _Reply(204)
        if endpoint == "search":
            return self._search_objects(spec, self._require_object(body), len(raw))
        if endpoint == "batch":
            return self._batch(spec, args["operation"], self._require_object(body))
        if endpoint == "list_properties":
            return _Reply(
                200, {"results": [p.to_json() for p in self._properties[spec.name].values()]}
            )
        if endpoint == "read_property":
            prop = self._properties[spec.name].get(args["property_name"])
            if prop is None:
                raise _ApiError(
                    404,
                    _error(
                        f"Unable to find property {args['property_name']} for object type "
                        f"{spec.type_id}",
                        "OBJECT_NOT_FOUND",
                    ),
                )
            return _Reply(200, prop.to_json())
        if endpoint == "create_property":
            return self._create_property(spec, self._require_object(body))
        if endpoint == "read_pipeline":
            return self._read_pipeline(spec, args["pipeline_id"])
        return self._dispatch_v4(endpoint, spec, args, query, body)

    def _dispatch_v4(
        self, endpoint: str, spec: ObjectTypeSpec, args: Mapping[str, str], query: Any, body: Any
    ) -> _Reply:
        to_spec = self._spec_or_400(args["to_object_type"])
        if endpoint == "v4_labels":
            return _Reply(
                200,
                {
                    "results": [
                        {"category": "HUBSPOT_DEFINED", "typeId": d.type_id, "label": d.label}
                        for d in ASSOCIATION_TYPES.get((spec.name, to_spec.name), ())
                    ]
                },
            )
        record = self._find(spec, args["object_id"], None)
        if endpoint == "v4_list":
            return self._v4_list(spec, record, to_spec, query.get("after"), query.get("limit"))
        target = self._find(to_spec, args["to_object_id"], None)
        if endpoint == "v4_create_default":
            definition = _default_association_type(spec.name, to_spec.name)
            if definition is None:
                raise _validation_error(
                    f"No default association type between {spec.upper} and {to_spec.upper}"
                )
            self._add_association(definition, record.id, target.id)
            now = _iso(datetime.now(UTC))
            results = [
                {
                    "from": {"id": a},
                    "to": {"id": b},
                    "associationSpec": {
                        "associationCategory": "HUBSPOT_DEFINED",
                        "associationTypeId": tid,
                    },
                }
                for a, b, tid in (
                    (record.id, target.id, definition.type_id),
                    (target.id, record.id, definition.inverse_type_id),
                )
            ]
            return _Reply(
                200,
                {"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now},
            )
        specs = body if isinstance(body, list) else None
        if not specs:
            raise _validation_error("Invalid input JSON: expected a list of association specs")
        for item in specs:
            definition = self._association_from_spec(spec, item)
            if definition.to_type != to_spec.name:
                raise self._invalid_association_types(spec, [item.get("associationTypeId")])
            self._add_association(definition, record.id, target.id)
        labels = sorted(
            {
                d.label
                for d in ASSOCIATION_TYPES.get((spec.name, to_spec.name), ())
                if d.label
                and any(
                    a.type_id == d.type_id and a.to_id == target.id
                    for a in self._edges(spec.name, record.id, to_spec.name)
                )
            }
        )
        return _Reply(
            201,
            {
                "fromObjectTypeId": spec.type_id,
                "fromObjectId": _numeric(record.id),
                "toObjectTypeId": to_spec.type_id,
                "toObjectId": _numeric(target.id),
                "labels": labels,
            },
        )

    # ---------------------------------------------------------------- token introspection

    def _oauth_token_info(self, token: str) -> _Reply:
        info = self._tokens.get(token)
        if info is None:
            raise _ApiError(404, _error("Token not found", "OBJECT_NOT_FOUND"))
        return _Reply(
            200,
            {
                "token": info.token,
                "user": info.user_email,
                "hub_domain": f"hub-{info.hub_id}.example.com",
                "scopes": sorted(info.scopes),
                "hub_id": info.hub_id,
                "app_id": info.app_id,
                "expires_in": 1800,
                "user_id": info.user_id,
                "token_type": "access",
            },
        )

    def _private_app_token_info(self, body: Any) -> _Reply:
        key = body.get("tokenKey") if isinstance(body, Mapping) else None
        info = self._tokens.get(key) if isinstance(key, str) else None
        if info is None:
            raise _ApiError(401, _auth_error())
        return _Reply(
            200,
            {
                "userId": info.user_id,
                "hubId": info.hub_id,
                "appId": info.app_id,
                "scopes": sorted(info.scopes),
            },
        )

    # ---------------------------------------------------------------- owners

    def _list_owners(
        self, email: str | None, after: str | None, limit: str | None, archived: str | None
    ) -> _Reply:
        want_archived = archived == "true"
        owners = [
            o
            for o in self._owners.values()
            if o.archived == want_archived and (email is None or o.email.lower() == email.lower())
        ]
        start = int(after) if after and after.isdigit() else 0
        size = min(int(limit), 500) if limit and limit.isdigit() else 100
        page = owners[start : start + size]
        body: JSONDict = {"results": [o.to_json() for o in page]}
        if start + size < len(owners):
            body["paging"] = {"next": {"after": str(start + size)}}
        return _Reply(200, body)

    def _read_pipeline(self, spec: ObjectTypeSpec, pipeline_id: str) -> _Reply:
        """``GET /crm/v3/pipelines/{type}/{id}``: the pipeline and its stages, taken from the
        options of the type's pipeline and stage properties (one pipeline holds every stage)."""
        pipeline_property, stage_property = _PIPELINE_PROPERTIES.get(spec.name, ("", ""))
        pipelines = self._properties[spec.name].get(pipeline_property)
        stages = self._properties[spec.name].get(stage_property)
        if pipelines is None or stages is None or pipeline_id not in pipelines.options:
            raise _ApiError(
                404, _error(f"Pipeline {pipeline_id} does not exist", "OBJECT_NOT_FOUND")
            )
        stamp = _iso(pipelines.created_at)
        return _Reply(
            200,
            {
                "id": pipeline_id,
                "label": pipeline_id,
                "displayOrder": 0,
                "archived": False,
                "createdAt": stamp,
                "updatedAt": stamp,
                "stages": [
                    {
                        "id": stage,
                        "label": stage,
                        "displayOrder": order,
                        "metadata": {},
                        "archived": False,
                        "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                        "createdAt": stamp,
                        "updatedAt": stamp,
                    }
                    for order, stage in enumerate(stages.options)
                ],
            },
        )

    def _read_owner(self, owner_id: str, id_property: str | None, archived: str | None) -> _Reply:
        for owner in self._owners.values():
            key = str(owner.user_id) if id_property == "userId" else owner.id
            if key == owner_id and owner.archived == (archived == "true"):
                return _Reply(200, owner.to_json())
        raise _ApiError(404, _error(f"Owner {owner_id} not found", "OBJECT_NOT_FOUND"))

    # ---------------------------------------------------------------- objects: basic

    def _create_from_input(self, spec: ObjectTypeSpec, body: Mapping[str, Any]) -> JSONDict:
        values = self._validate_properties(spec, body.get("properties") or {}, None)
        links = self._validate_association_inputs(spec, body.get("associations") or [])
        self._check_unique_values(spec, values, None)
        record = self._insert(spec, values, lagged=True)
        for definition, to_id in links:
            self._add_association(definition, record.id, to_id)
        return self._object_json(spec, record, record.properties, None, all_properties=True)

    def _read(
        self,
        spec: ObjectTypeSpec,
        object_id: str,
        properties: list[str],
        associations: list[str],
        id_property: str | None,
        archived: bool,
    ) -> _Reply:
        record = self._find(spec, object_id, id_property, archived=archived)
        body = self._object_json(spec, record, record.properties, properties or None)
        linked: JSONDict = {}
        for name in associations:
            to_spec = _object_type_or_none(name)
            if to_spec is None:
                continue
            edges = self._edges(spec.name, record.id, to_spec.name)
            if edges:
                linked[to_spec.name] = {
                    "results": [
                        {"id": edge.to_id, "type": self._association_name(edge)} for edge in edges
                    ]
                }
        if linked:
            body["associations"] = linked
        return _Reply(200, body)

    def _update(
        self, spec: ObjectTypeSpec, object_id: str, body: Mapping[str, Any], id_property: str | None
    ) -> _Reply:
        record = self._find(spec, object_id, id_property)
        values = self._validate_properties(spec, body.get("properties") or {}, record)
        self._check_unique_values(spec, values, record.id)
        self._apply_update(spec, record, values)
        return _Reply(
            200, self._object_json(spec, record, record.properties, None, all_properties=True)
        )

    def _list_objects(
        self, spec: ObjectTypeSpec, after: str | None, limit: str | None, properties: list[str]
    ) -> _Reply:
        records = [r for r in self._objects[spec.name].values() if not r.archived]
        if after:
            records = [r for r in records if int(r.id) > int(after)] if after.isdigit() else []
        size = min(int(limit), 100) if limit and limit.isdigit() else 10
        page = records[:size]
        body: JSONDict = {
            "results": [self._object_json(spec, r, r.properties, properties or None) for r in page]
        }
        if len(records) > size:
            body["paging"] = {"next": {"after": str(int(page[-1].id) + 1)}}
        return _Reply(200, body)

    # ---------------------------------------------------------------- objects: batch

    def _batch(self, spec: ObjectTypeSpec, operation: str, body: Mapping[str, Any]) -> _Reply:
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise _validation_error(
                "Invalid input JSON on line 1, column 1: Some required fields were not set: "
                "[inputs]"
            )
        if len(inputs) > MAX_BATCH_INPUTS:
            raise _validation_error(
                f"Too many inputs: {len(inputs)}. A batch may contain at most "
                f"{MAX_BATCH_INPUTS} inputs."
            )
        started = _iso(datetime.now(UTC))
        if operation == "create":
            results = self._batch_create(spec, inputs)
            status = 201
        elif operation == "upsert":
            results = self._batch_upsert(spec, inputs)
            status = 200
        elif operation == "update":
            results = self._batch_update(spec, inputs)
            status = 200
        elif operation == "read":
            return self._batch_read(spec, body, inputs, started)
        else:
            raise _ApiError(404, _error(f"Unknown batch operation {operation}", "OBJECT_NOT_FOUND"))
        return _Reply(
            status,
            {
                "status": "COMPLETE",
                "results": results,
                "startedAt": started,
                "completedAt": _iso(datetime.now(UTC)),
            },
        )

    def _batch_create(self, spec: ObjectTypeSpec, inputs: list[Any]) -> list[JSONDict]:
        prepared = []
        for item in inputs:
            item = self._require_object(item)
            values = self._validate_properties(spec, item.get("properties") or {}, None)
            links = self._validate_association_inputs(spec, item.get("associations") or [])
            self._check_unique_values(spec, values, None)
            prepared.append((values, links))
        results = []
        for values, links in prepared:
            record = self._insert(spec, values, lagged=True)
            for definition, to_id in links:
                self._add_association(definition, record.id, to_id)
            results.append(
                self._object_json(spec, record, record.properties, None, all_properties=True)
            )
        return results

    def _batch_upsert(self, spec: ObjectTypeSpec, inputs: list[Any]) -> list[JSONDict]:
        plans: list[tuple[_StoredObject | None, dict[str, str]]] = []
        seen: set[tuple[str, str]] = set()
        for item in inputs:
            item = self._require_object(item)
            id_property, key = item.get("idProperty"), item.get("id")
            if not isinstance(id_property, str) or key is None:
                raise _validation_error("Each upsert input needs idProperty and id")
            if not self._is_unique_key(spec, id_property):
                raise _validation_error(
                    f"Property {id_property} is not a unique identifier property for "
                    f"{spec.upper}: use a property with hasUniqueValue=true"
                )
            if (id_property, str(key).lower()) in seen:
                raise _validation_error(f"Duplicate IDs found in batch input: [{key}]")
            seen.add((id_property, str(key).lower()))
            existing = self._lookup(spec, str(key), id_property)
            values = self._validate_properties(spec, item.get("properties") or {}, existing)
            if existing is None and id_property != "hs_object_id":
                values[id_property] = str(key)
            plans.append((existing, values))
        results = []
        for existing, values in plans:
            if existing is None:
                record = self._insert(spec, values, lagged=True)
            else:
                record = existing
                self._apply_update(spec, record, values)
            result = self._object_json(spec, record, record.properties, None, all_properties=True)
            result["new"] = existing is None
            results.append(result)
        return results

    def _batch_update(self, spec: ObjectTypeSpec, inputs: list[Any]) -> list[JSONDict]:
        plans = []
        for item in inputs:
            item = self._require_object(item)
            record = self._find(spec, str(item.get("id")), item.get("idProperty"))
            plans.append(
                (record, self._validate_properties(spec, item.get("properties") or {}, record))
            )
        for record, values in plans:
            self._apply_update(spec, record, values)
        return [
            self._object_json(spec, r, r.properties, None, all_properties=True) for r, _ in plans
        ]

    def _batch_read(
        self, spec: ObjectTypeSpec, body: Mapping[str, Any], inputs: list[Any], started: str
    ) -> _Reply:
        properties = [p for p in body.get("properties") or [] if isinstance(p, str)]
        id_property = body.get("idProperty")
        found, missing = [], []
        for item in inputs:
            key = str(self._require_object(item).get("id"))
            record = self._lookup(spec, key, id_property)
            if record is None or record.archived:
                missing.append(key)
            else:
                found.append(self._object_json(spec, record, record.properties, properties or None))
        reply: JSONDict = {
            "status": "COMPLETE",
            "results": found,
            "startedAt": started,
            "completedAt": _iso(datetime.now(UTC)),
        }
        if not missing:
            return _Reply(200, reply)
        reply["numErrors"] = 1
        reply["errors"] = [
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": f"Could not get some {spec.upper} objects, they may be deleted or not "
                "exist. Check that ids are valid.",
                "context": {"ids": missing},
            }
        ]
        return _Reply(207, reply)

    # ---------------------------------------------------------------- objects: search

    def _search_objects(self, spec: ObjectTypeSpec, body: Mapping[str, Any], size: int) -> _Reply:
        if size > MAX_SEARCH_BODY_CHARS:
            raise _validation_error(
                f"The request body exceeds the maximum of {MAX_SEARCH_BODY_CHARS} characters"
            )
        groups = body.get("filterGroups") or []
        if not isinstance(groups, list):
            raise _validation_error("filterGroups must be a list")
        filters_per_group = [list(self._require_object(g).get("filters") or []) for g in groups]
        total = sum(len(f) for f in filters_per_group)
        if (
            len(groups) > MAX_FILTER_GROUPS
            or total > MAX_FILTERS_TOTAL
            or any(len(f) > MAX_FILTERS_PER_GROUP for f in filters_per_group)
        ):
            raise _validation_error(
                f"Too many filters or filter groups: {len(groups)} groups, {total} filters. "
                f"At most {MAX_FILTER_GROUPS} filterGroups with up to {MAX_FILTERS_PER_GROUP} "
                f"filters each and {MAX_FILTERS_TOTAL} filters in total are allowed."
            )
        limit = self._int_field(body, "limit", DEFAULT_SEARCH_PAGE)
        after = self._int_field(body, "after", 0)
        if not 0 <= limit <= MAX_SEARCH_PAGE:
            raise _validation_error(f"limit must be between 0 and {MAX_SEARCH_PAGE}")
        if after + limit > MAX_SEARCH_RESULTS:
            raise _validation_error(f"Paging beyond {MAX_SEARCH_RESULTS} results is not supported")

        now = self._clock()
        candidates = [
            (record, snapshot)
            for record in self._objects[spec.name].values()
            if not record.archived and (snapshot := record.indexed_properties(now)) is not None
        ]
        matched = [
            (record, snapshot)
            for record, snapshot in candidates
            if not any(filters_per_group)
            or any(
                all(self._filter_matches(spec, flt, record, snapshot) for flt in filters)
                for filters in filters_per_group
                if filters
            )
        ]
        text = body.get("query")
        if isinstance(text, str) and text.strip():
            matched = [(r, s) for r, s in matched if self._query_matches(spec, text, s)]
        matched = self._sorted(spec, matched, body.get("sorts") or [])

        requested = [p for p in body.get("properties") or [] if isinstance(p, str)]
        page = matched[after : after + limit]
        reply: JSONDict = {
            "total": len(matched),
            "results": [self._object_json(spec, r, s, requested or None) for r, s in page],
        }
        if after + limit < len(matched):
            reply["paging"] = {"next": {"after": str(after + limit)}}
        return _Reply(200, reply)

    def _filter_matches(
        self,
        spec: ObjectTypeSpec,
        flt: Any,
        record: _StoredObject,
        snapshot: Mapping[str, str],
    ) -> bool:
        flt = self._require_object(flt)
        name, operator = flt.get("propertyName"), flt.get("operator")
        if not isinstance(name, str) or not isinstance(operator, str):
            raise _validation_error("Each filter needs propertyName and operator")
        if name.startswith("associations."):
            target = _object_type_or_none(name.split(".", 1)[1])
            linked = (
                {e.to_id for e in self._edges(spec.name, record.id, target.name)}
                if target
                else set()
            )
            return self._compare_sets(operator, linked, flt)
        stored = snapshot.get(name) or None
        definition = self._properties[spec.name].get(name)
        kind = definition.type if definition else "string"
        if operator == "HAS_PROPERTY":
            return stored is not None
        if operator == "NOT_HAS_PROPERTY":
            return stored is None
        if operator in ("EQ", "NEQ"):
            equal = stored is not None and _values_equal(kind, stored, flt.get("value"))
            return equal if operator == "EQ" else not equal
        if operator in ("IN", "NOT_IN"):
            values = flt.get("values") or []
            hit = stored is not None and any(_value_in(kind, stored, v) for v in values)
            return hit if operator == "IN" else not hit
        if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            hit = stored is not None and _contains_token(stored, str(flt.get("value", "")))
            return hit if operator == "CONTAINS_TOKEN" else not hit
        if operator in ("LT", "LTE", "GT", "GTE", "BETWEEN"):
            return _compare_range(kind, operator, stored, flt)
        raise _validation_error(f"Unknown filter operator {operator}")

    @staticmethod
    def _compare_sets(operator: str, linked: set[str], flt: Mapping[str, Any]) -> bool:
        value = str(flt.get("value"))
        values = {str(v) for v in flt.get("values") or []}
        outcomes = {
            "EQ": value in linked,
            "NEQ": value not in linked,
            "IN": bool(linked & values),
            "NOT_IN": not linked & values,
            "HAS_PROPERTY": bool(linked),
            "NOT_HAS_PROPERTY": not linked,
        }
        if operator not in outcomes:
            raise _validation_error(f"Operator {operator} is not supported for associations")
        return outcomes[operator]

    def _query_matches(self, spec: ObjectTypeSpec, text: str, snapshot: Mapping[str, str]) -> bool:
        needle = text.strip().lower()
        fields = {
            "contacts": ("firstname", "lastname", "email", "phone", "mobilephone", "company"),
            "companies": ("website", "phone", "name", "domain"),
            "deals": ("dealname", "pipeline", "dealstage"),
            "tickets": ("subject", "content", "hs_pipeline_stage", "hs_ticket_category"),
            "calls": ("hs_call_title", "hs_call_body"),
            "tasks": ("hs_task_body", "hs_task_subject"),
            "notes": ("hs_note_body",),
        }[spec.name]
        return any(needle in (snapshot.get(name) or "").lower() for name in fields)

    def _sorted(
        self,
        spec: ObjectTypeSpec,
        rows: list[tuple[_StoredObject, dict[str, str]]],
        sorts: Sequence[Any],
    ) -> list[tuple[_StoredObject, dict[str, str]]]:
        rows = sorted(rows, key=lambda row: int(row[0].id))
        if not sorts:
            return rows
        first = sorts[0]  # HubSpot: "Only one sorting rule can be applied to any search."
        if isinstance(first, str):
            name, descending = first.lstrip("-"), first.startswith("-")
        else:
            first = self._require_object(first)
            name = str(first.get("propertyName"))
            descending = first.get("direction") == "DESCENDING"
        definition = self._properties[spec.name].get(name)
        kind = definition.type if definition else "string"

        def key(row: tuple[_StoredObject, dict[str, str]]) -> tuple[int, Any]:
            value = row[1].get(name) or None
            if value is None:
                return (1, 0)
            if kind in ("number", "datetime", "date"):
                number = _sortable_number(kind, value)
                return (0, number if number is not None else 0.0)
            return (0, value.lower())

        present = [row for row in rows if row[1].get(name)]
        absent = [row for row in rows if not row[1].get(name)]
        return sorted(present, key=key, reverse=descending) + absent

    # ---------------------------------------------------------------- properties API

    def _create_property(self, spec: ObjectTypeSpec, body: Mapping[str, Any]) -> _Reply:
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise _validation_error("Some required fields were not set: [name]")
        if name in self._properties[spec.name]:
            raise _ApiError(
                409, _error(f"A property named '{name}' already exists.", "OBJECT_ALREADY_EXISTS")
            )
        options = [str(o.get("value")) for o in body.get("options") or [] if isinstance(o, Mapping)]
        definition = PropertyDefinition(
            name,
            str(body.get("label") or name),
            type=str(body.get("type") or "string"),
            field_type=str(body.get("fieldType") or "text"),
            group_name=str(body.get("groupName") or "custom"),
            options=tuple(options),
            strict_options=bool(options),
            unique=bool(body.get("hasUniqueValue")),
            hubspot_defined=False,
        )
        self._properties[spec.name][name] = definition
        return _Reply(201, definition.to_json())

    # ---------------------------------------------------------------- validation

    def _validate_properties(
        self, spec: ObjectTypeSpec, raw: Any, existing: _StoredObject | None
    ) -> dict[str, str]:
        if not isinstance(raw, Mapping):
            raise _validation_error("Invalid input JSON: properties must be an object")
        values: dict[str, str] = {}
        problems: list[JSONDict] = []
        for name, value in raw.items():
            definition = self._properties[spec.name].get(name)
            if not isinstance(value, str | int | float | bool) and value is not None:
                problems.append(_problem(name, "INVALID_INPUT", f"{name} must be a scalar value"))
                continue
            text = self._coerce(value)
            if self.strict_properties:
                problem = self._check_value(spec, name, definition, text)
                if problem:
                    problems.append(problem)
                    continue
            if definition is not None and definition.type in ("datetime", "date") and text:
                parsed = _parse_datetime(text)
                text = _iso(parsed) if parsed else text
            values[name] = text
        if problems:
            message = "Property values were not valid: " + json.dumps(
                problems, separators=(",", ":")
            )
            raise _validation_error(message)
        return values

    def _check_value(
        self, spec: ObjectTypeSpec, name: str, definition: PropertyDefinition | None, text: str
    ) -> JSONDict | None:
        if definition is None:
            return _problem(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
        if definition.read_only:
            return _problem(
                name, "READ_ONLY_VALUE", f"{name} is a read only property; its value cannot be set."
            )
        if not text:
            return None
        if name == "hubspot_owner_id":
            if text not in self._owners:
                return _problem(name, "INVALID_OWNER_ID", f"{text} is not a valid owner id")
            return None
        if definition.type == "number" and _float_or_none(text) is None:
            return _problem(name, "INVALID_DECIMAL", f"{text} was not a valid number.")
        if definition.type in ("datetime", "date") and _parse_datetime(text) is None:
            return _problem(
                name, "INVALID_DATE", f"{text} was not a valid long or ISO 8601 datetime."
            )
        if definition.strict_options and text not in definition.options:
            allowed = ", ".join(definition.options)
            return _problem(
                name, "INVALID_OPTION", f"{text} was not one of the allowed options: [{allowed}]"
            )
        if spec.name == "contacts" and name == "email" and "@" not in text:
            return _problem(name, "INVALID_EMAIL", f"Email address {text} is invalid")
        return None

    def _check_unique_values(
        self, spec: ObjectTypeSpec, values: Mapping[str, str], own_id: str | None
    ) -> None:
        for name, value in values.items():
            if not value:
                continue
            definition = self._properties[spec.name].get(name)
            contact_email = spec.name == "contacts" and name == "email"
            if not contact_email and not (definition and definition.unique):
                continue
            existing = self._lookup(spec, value, name)
            if existing is not None and existing.id != own_id:
                label = "Contact" if contact_email else f"{spec.singular.capitalize()}"
                raise _ApiError(
                    409, _error(f"{label} already exists. Existing ID: {existing.id}", "CONFLICT")
                )

    def _validate_association_inputs(
        self, spec: ObjectTypeSpec, raw: Any
    ) -> list[tuple[AssociationTypeDef, str]]:
        if not isinstance(raw, list):
            raise _validation_error("Invalid input JSON: associations must be a list")
        links: list[tuple[AssociationTypeDef, str]] = []
        bad_types: list[Any] = []
        bad_ids: list[str] = []
        for item in raw:
            item = self._require_object(item)
            target = item.get("to")
            types = item.get("types")
            if not isinstance(target, Mapping) or target.get("id") in (None, "") or not types:
                raise _validation_error(
                    "Invalid input JSON on line 1: Some required fields were not set: [to, types]"
                )
            to_id = str(target["id"])
            for association_spec in types:
                try:
                    definition = self._association_from_spec(spec, association_spec)
                except _ApiError:
                    bad_types.append(
                        self._require_object(association_spec).get("associationTypeId")
                    )
                    continue
                target_record = self._objects[definition.to_type].get(to_id)
                if target_record is None or target_record.archived:
                    bad_ids.append(f"{OBJECT_TYPES[definition.to_type].upper}={to_id} is not valid")
                    continue
                links.append((definition, to_id))
        if bad_types:
            raise self._invalid_association_types(spec, bad_types)
        if bad_ids:
            raise _validation_error(
                "One or more associations are invalid", context={"INVALID_OBJECT_IDS": bad_ids}
            )
        return links

    def _association_from_spec(self, spec: ObjectTypeSpec, raw: Any) -> AssociationTypeDef:
        item = self._require_object(raw)
        category = item.get("associationCategory")
        type_id = item.get("associationTypeId")
        number = int(type_id) if isinstance(type_id, int | str) and str(type_id).isdigit() else None
        definition = _association_type(spec.name, number) if number is not None else None
        if category != "HUBSPOT_DEFINED" or definition is None:
            raise self._invalid_association_types(spec, [type_id])
        return definition

    @staticmethod
    def _invalid_association_types(spec: ObjectTypeSpec, type_ids: Sequence[Any]) -> _ApiError:
        return _validation_error(
            "One or more associations are invalid",
            context={
                "INVALID_ASSOCIATION_TYPE_IDS": [
                    f"{type_id} is not a valid HUBSPOT_DEFINED association type from {spec.upper}"
                    for type_id in type_ids
                ]
            },
        )

    # ---------------------------------------------------------------- storage primitives

    def _spec(self, object_type: str) -> ObjectTypeSpec:
        spec = _object_type_or_none(object_type)
        if spec is None:
            raise ValueError(f"unsupported object type {object_type!r}")
        return spec

    @staticmethod
    def _spec_or_400(object_type: str) -> ObjectTypeSpec:
        spec = _object_type_or_none(object_type)
        if spec is None:
            raise _validation_error(f"Unable to infer object type from: {object_type}")
        return spec

    @staticmethod
    def _require_object(body: Any) -> Mapping[str, Any]:
        if not isinstance(body, Mapping):
            raise _validation_error("Invalid input JSON: expected a JSON object")
        return body

    @staticmethod
    def _int_field(body: Mapping[str, Any], name: str, default: int) -> int:
        value = body.get(name)
        if value in (None, ""):
            return default
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            return int(value)
        raise _validation_error(f"{name} must be an integer")

    @staticmethod
    def _coerce(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def _is_unique_key(self, spec: ObjectTypeSpec, name: str) -> bool:
        definition = self._properties[spec.name].get(name)
        return (
            name == "hs_object_id"
            or name in _UPSERT_KEYS.get(spec.name, frozenset())
            or bool(definition and definition.unique)
        )

    def _lookup(
        self, spec: ObjectTypeSpec, key: str, id_property: str | None
    ) -> _StoredObject | None:
        if not id_property or id_property == "hs_object_id":
            return self._objects[spec.name].get(key)
        folded = key.lower() if id_property == "email" else key
        for record in self._objects[spec.name].values():
            value = record.properties.get(id_property)
            if value is not None and (value.lower() if id_property == "email" else value) == folded:
                return record
        return None

    def _find(
        self, spec: ObjectTypeSpec, key: str, id_property: str | None, *, archived: bool = False
    ) -> _StoredObject:
        record = self._lookup(spec, key, id_property)
        if record is None or record.archived != archived:
            raise _ApiError(
                404,
                _error(
                    f"Object not found.  objectId are usually numeric. ({spec.upper}={key})",
                    "OBJECT_NOT_FOUND",
                    context={"id": [key]},
                ),
            )
        return record

    def _insert(
        self, spec: ObjectTypeSpec, values: Mapping[str, str], *, lagged: bool
    ) -> _StoredObject:
        now = datetime.now(UTC)
        object_id = str(next(self._ids))
        properties = dict(values)
        properties.setdefault(spec.created_property, _iso(now))
        properties[spec.modified_property] = _iso(now)
        properties["hs_object_id"] = object_id
        properties.update(self._calculated(spec, properties))
        record = _StoredObject(spec.name, object_id, properties, now, now)
        self._index(record, lagged)
        self._objects[spec.name][object_id] = record
        return record

    def _apply_update(
        self, spec: ObjectTypeSpec, record: _StoredObject, values: Mapping[str, str]
    ) -> None:
        now = datetime.now(UTC)
        record.properties.update(values)
        record.properties[spec.modified_property] = _iso(now)
        for name in _PHONE_CALCULATED + _MOBILE_CALCULATED:
            record.properties.pop(name, None)
        record.properties.update(self._calculated(spec, record.properties))
        record.updated_at = now
        self._index(record, lagged=True)

    def _index(self, record: _StoredObject, lagged: bool) -> None:
        visible_at = self._clock() + (self.search_lag_seconds if lagged else 0.0)
        record.index_versions.append((visible_at, dict(record.properties)))

    def _calculated(self, spec: ObjectTypeSpec, properties: Mapping[str, str]) -> dict[str, str]:
        if spec.name not in ("contacts", "companies"):
            return {}
        calculated: dict[str, str] = {}
        if properties.get("phone"):
            calculated.update(
                calculated_phone_properties(properties["phone"], "phone", self.default_region)
            )
        if spec.name == "contacts" and properties.get("mobilephone"):
            calculated.update(
                calculated_phone_properties(
                    properties["mobilephone"], "mobile", self.default_region
                )
            )
        return calculated

    def _add_association(self, definition: AssociationTypeDef, from_id: str, to_id: str) -> None:
        edges = [
            Association(
                definition.from_type, from_id, definition.to_type, to_id, definition.type_id
            ),
            Association(
                definition.to_type, to_id, definition.from_type, from_id, definition.inverse_type_id
            ),
        ]
        if not definition.is_default:
            default = _default_association_type(definition.from_type, definition.to_type)
            if default is not None:
                edges += [
                    Association(
                        default.from_type, from_id, default.to_type, to_id, default.type_id
                    ),
                    Association(
                        default.to_type, to_id, default.from_type, from_id, default.inverse_type_id
                    ),
                ]
        for edge in edges:
            if edge not in self._associations:
                self._associations.append(edge)

    def _edges(self, from_type: str, from_id: str, to_type: str) -> list[Association]:
        return [
            a
            for a in self._associations
            if a.from_type == from_type and a.from_id == from_id and a.to_type == to_type
        ]

    @staticmethod
    def _association_name(edge: Association) -> str:
        definition = _association_type(edge.from_type, edge.type_id)
        return definition.name if definition else str(edge.type_id)

    def _v4_list(
        self,
        spec: ObjectTypeSpec,
        record: _StoredObject,
        to_spec: ObjectTypeSpec,
        after: str | None,
        limit: str | None,
    ) -> _Reply:
        grouped: dict[str, list[JSONDict]] = {}
        for edge in self._edges(spec.name, record.id, to_spec.name):
            definition = _association_type(edge.from_type, edge.type_id)
            grouped.setdefault(edge.to_id, []).append(
                {
                    "category": edge.category,
                    "typeId": edge.type_id,
                    "label": definition.label if definition else None,
                }
            )
        rows = [
            {"toObjectId": _numeric(to_id), "associationTypes": types}
            for to_id, types in grouped.items()
        ]
        start = int(after) if after and after.isdigit() else 0
        size = min(int(limit), 500) if limit and limit.isdigit() else 500
        body: JSONDict = {"results": rows[start : start + size]}
        if start + size < len(rows):
            body["paging"] = {"next": {"after": str(start + size)}}
        return _Reply(200, body)

    def _object_json(
        self,
        spec: ObjectTypeSpec,
        record: _StoredObject,
        source: Mapping[str, str],
        requested: Sequence[str] | None,
        *,
        all_properties: bool = False,
    ) -> JSONDict:
        if all_properties:
            properties: dict[str, str | None] = dict(source)
        elif requested:
            names = {*requested, spec.created_property, spec.modified_property, "hs_object_id"}
            properties = {name: source.get(name) for name in names}
        else:
            properties = {name: source.get(name) for name in spec.default_properties}
        return {
            "id": record.id,
            "properties": dict(sorted(properties.items())),
            "createdAt": _iso(record.created_at),
            "updatedAt": _iso(record.updated_at),
            "archived": record.archived,
        }


# --------------------------------------------------------------------------------------------
# Filter helpers
# --------------------------------------------------------------------------------------------


def _problem(name: str, error: str, message: str) -> JSONDict:
    return {
        "isValid": False,
        "message": message,
        "error": error,
        "name": name,
        "localizedErrorMessage": message,
    }


def _numeric(object_id: str) -> int | str:
    return int(object_id) if object_id.isdigit() else object_id


def _sortable_number(kind: str, value: str) -> float | None:
    if kind in ("datetime", "date"):
        return _epoch_millis(value)
    return _float_or_none(value)


def _values_equal(kind: str, stored: str, wanted: Any) -> bool:
    if wanted is None:
        return False
    wanted_text = str(wanted).lower() if isinstance(wanted, bool) else str(wanted)
    if kind in ("number", "datetime", "date"):
        left, right = _sortable_number(kind, stored), _sortable_number(kind, wanted_text)
        return left is not None and left == right
    if kind == "enumeration":
        return stored == wanted_text
    return stored.lower() == wanted_text.lower()


def _value_in(kind: str, stored: str, wanted: Any) -> bool:
    # HubSpot: "When searching a string property with this operator, values must be lowercase."
    if kind == "string":
        return stored.lower() == str(wanted)
    return _values_equal(kind, stored, wanted)


def _contains_token(stored: str, pattern: str) -> bool:
    text = stored.lower()
    needle = pattern.lower()
    tokens = [token for token in re.split(r"[^\w@.+-]+|(?<=\w)[.@](?=\w)", text) if token]
    tokens += [token for token in re.split(r"\s+", text) if token]
    if "*" in needle:
        return fnmatch.fnmatchcase(text, needle) or any(
            fnmatch.fnmatchcase(token, needle) for token in tokens
        )
    return needle == text or needle in tokens


def _compare_range(kind: str, operator: str, stored: str | None, flt: Mapping[str, Any]) -> bool:
    if stored is None:
        return False
    numeric = kind in ("number", "datetime", "date")
    left: Any = _sortable_number(kind, stored) if numeric else stored.lower()
    low: Any = (
        _sortable_number(kind, str(flt.get("value"))) if numeric else str(flt.get("value")).lower()
    )
    if left is None or low is None:
        return False
    if operator == "BETWEEN":
        high: Any = (
            _sortable_number(kind, str(flt.get("highValue")))
            if numeric
            else str(flt.get("highValue")).lower()
        )
        return high is not None and low <= left <= high
    outcomes = {"LT": left < low, "LTE": left <= low, "GT": left > low, "GTE": left >= low}
    return bool(outcomes[operator])
