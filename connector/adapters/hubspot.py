"""The ``hubspot`` target: each call as a HubSpot call engagement on the matched CRM records.

Per delivery the adapter writes, through the official SDK (``hubspot-api-client`` 12):

1. one call (``POST /crm/v3/objects/calls``) with the rendered mapping fields plus the properties
   the adapter owns (time, direction, duration, numbers, status, owner, the sipgate call id) and
   inline associations: call→contact (194) for every matched contact, call→company (182) for
   matched companies and, with ``associate_company``, for the contacts' companies, call→deal (206)
   for the deal ``deal_rule`` picks. With ``unique_call_property`` the call is written by
   ``batch/upsert`` on that property instead, and associated afterwards (upsert inputs carry no
   associations) with idempotent v4 ``PUT`` requests;
2. the action items as tasks in one ``batch/create`` (task→contact 204, task→company 192);
3. a note (note→contact 202) with the text that did not fit (the transcript, as plain text from
   the planner, escaped into HTML paragraphs and cut to 65,536 characters), when there is any;
4. a ticket (ticket→contact 16) when the call came in on one of ``ticket.channels``.

A matched call with action items thus costs three requests: the search, the call, the tasks.

Idempotency: the id of every object is recorded in the delivery's `Journal` right after it was
created, and a retry skips what is recorded. Before a create is sent, ``<step>_pending`` is
recorded with the time; when the outcome stays unknown (timeout, dropped connection, 5xx) the
retry first looks the object up: the call by ``call_id_property`` = sipgate call id, tasks, note
and ticket by their association and creation time. HubSpot's search index lags behind writes
("it may take a few moments"), so when the lookup finds nothing within `PENDING_SETTLE_SECONDS`
of the unknown attempt the delivery is retried later instead of writing a possible duplicate.

Contacts for unknown callers (``create_record``): the durable `Memo` shared by all workers
remembers "this number got contact N" (and "someone is creating it right now"), so two calls
from a new number minutes apart yield one contact although the second search cannot see the
first contact yet. Contacts are created with ``phone`` = +E.164 and nothing marketing-related:
HubSpot documents that the marketing contact status "cannot be modified using HubSpot's API
endpoints" (``hs_marketable_status`` is read-only); contacts created by an app are
non-marketing unless an admin switched on marketing contacts for the app under Settings →
Integrations → Marketing contacts.

Rate limits: every request takes a slot from a `RateLimiter` (``general`` = requests per 10 s,
``search`` = searches per second) shared through ``rate_limit_store``. HubSpot's answers map to
the pipeline's errors: 429 ``TEN_SECONDLY_ROLLING`` and search 429s (which carry no
``policyName``) → `RetryableError` with Retry-After / rate limit headers or 10 s / 1 s; 429
``DAILY`` → `TargetParked` until the next midnight in ``portal_time_zone`` (HubSpot resets daily
limits at midnight in the account's time zone, which the API does not tell us; when the limit is
still used up after that midnight the time zone is wrong and the target is parked an hour at a
time); 401 and 403 and other 4xx → `PermanentError`; 5xx, timeouts, connection errors →
`RetryableError`. urllib3 never retries on its own (``Retry(0, read=False)``) and every request
has ``_request_timeout=(connect_timeout, read_timeout)``.

Messages of errors and log lines carry no phone numbers, e-mail addresses or tokens.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hubspot import HubSpot
from marshmallow import ValidationError, fields, validate, validates
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
)
from urllib3.util.retry import Retry

from connector.adapters.base import (
    Adapter,
    AdapterError,
    CheckResult,
    CrmRecord,
    DeliveryJob,
    Journal,
    OptionsSchema,
    PermanentError,
    RetryableError,
    TargetParked,
    TaskSpec,
    WriteResult,
)
from connector.config import TargetConfig
from connector.logs import mask_number
from connector.phone import PhoneNumber, parse_sipgate
from connector.ratelimit import Budget, RateLimiter, open_store
from connector.render import paragraphs_html, truncate_to

__all__ = [
    "ASSOCIATION_TYPES",
    "CALL_ID_PROPERTY",
    "PENDING_SETTLE_SECONDS",
    "REQUIRED_SCOPES",
    "HubSpotAdapter",
    "HubSpotOptions",
]

log = logging.getLogger(__name__)

#: HubSpot-defined association type ids (category ``HUBSPOT_DEFINED``), as in the SDK's
#: ``hubspot.crm.association_type.AssociationType``.
ASSOCIATION_TYPES: Mapping[tuple[str, str], int] = {
    ("calls", "contacts"): 194,
    ("calls", "companies"): 182,
    ("calls", "deals"): 206,
    ("tasks", "contacts"): 204,
    ("tasks", "companies"): 192,
    ("notes", "contacts"): 202,
    ("notes", "companies"): 190,
    ("tickets", "contacts"): 16,
    ("tickets", "companies"): 339,
}

#: The HubSpot-defined call property for "the call's id in the calling system": HubSpot's
#: calling extensions set it to the provider's call id (recordings are looked up by it).
CALL_ID_PROPERTY = "hs_call_external_id"

#: Scopes every target needs; companies/tickets/deals scopes are added by the options.
REQUIRED_SCOPES = (
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.owners.read",
)

#: After a create with unknown outcome, how long HubSpot's search may lag behind before a
#: lookup that finds nothing is trusted (HubSpot: "a few moments"; tools wait 10-60 s).
PENDING_SETTLE_SECONDS = 60.0

#: How far HubSpot's and our clocks may disagree when looking up recently created objects.
_CLOCK_SLACK = timedelta(minutes=5)

_MAX_BATCH = 100  # HubSpot batch endpoints take at most 100 inputs
_TEXT_LIMIT = 65_536  # characters of a HubSpot text property
_SEARCH_LIMIT = 100  # results per phone search; the policy picks among them
_CATEGORY = "HUBSPOT_DEFINED"
_PRIORITIES = {"low": "LOW", "normal": "MEDIUM", "medium": "MEDIUM", "high": "HIGH"}
_CLOSED_STAGES = frozenset({"closedwon", "closedlost"})
_DAILY_MEMO = "hubspot:daily-limit-reset"

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
#: Search's pseudo-property for "associated with record X" is ``associations.<singular>``.
_SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal"}
#: The creation-time property of each object type the adapter creates.
_CREATED = {"calls": "hs_createdate", "tasks": "hs_createdate", "notes": "hs_createdate"}
_CREATED_DEFAULT = "createdate"  # contacts, companies, deals, tickets


# --- options ---------------------------------------------------------------------------------


class _IdString(fields.Field[str]):
    """An id written as text or as a whole number (YAML reads ``12345`` as an int)."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValidationError("Must be text or a whole number.")
        text = str(value).strip()
        if not text:
            raise ValidationError("Must not be empty.")
        return text


def _store_url(value: str) -> None:
    if not value.startswith(("sqlite:///", "redis://", "rediss://", "unix://")):
        raise ValidationError("Must be sqlite:///FILE or redis://HOST:PORT/DB (or null).")


class _RateLimitOptions(OptionsSchema):
    requests_per_10s = fields.Integer(load_default=90, validate=validate.Range(min=1))
    searches_per_second = fields.Integer(load_default=4, validate=validate.Range(min=1))


class _TicketOptions(OptionsSchema):
    channels = fields.List(_IdString(), required=True, validate=validate.Length(min=1))
    pipeline = _IdString(required=True)
    stage = _IdString(required=True)


class HubSpotOptions(OptionsSchema):
    """Options of a ``hubspot`` target (see the module docstring for what they change)."""

    access_token = fields.String(required=True, validate=validate.Length(min=1))
    base_url = fields.String(
        load_default="https://api.hubapi.com",
        validate=validate.URL(schemes={"http", "https"}, require_tld=False),
    )
    connect_timeout = fields.Float(load_default=5.0, validate=validate.Range(min=0.1, max=120))
    read_timeout = fields.Float(load_default=30.0, validate=validate.Range(min=0.1, max=600))
    rate_limit = fields.Nested(
        _RateLimitOptions,
        load_default=lambda: {"requests_per_10s": 90, "searches_per_second": 4},
    )
    rate_limit_store = fields.String(load_default=None, allow_none=True, validate=_store_url)
    associate_company = fields.Boolean(load_default=True)
    deal_rule = fields.String(
        load_default="none", validate=validate.OneOf(["none", "most_recent_open"])
    )
    ticket = fields.Nested(_TicketOptions, load_default=None, allow_none=True)
    unique_call_property = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1)
    )
    call_id_property = fields.String(load_default=CALL_ID_PROPERTY, validate=validate.Length(min=1))
    mapping = fields.String(load_default=None, allow_none=True)
    owners = fields.Dict(keys=_IdString(), values=_IdString(), load_default=dict)
    cache_seconds = fields.Float(load_default=300.0, validate=validate.Range(min=0))
    portal_time_zone = fields.String(load_default="UTC")
    required_properties = fields.List(
        fields.String(validate=validate.Length(min=1)), load_default=list
    )

    @validates("portal_time_zone")
    def _known_zone(self, value: str, **_: Any) -> None:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationError(f"Unknown time zone {value!r} (use e.g. Europe/Berlin).") from exc


# --- small helpers ---------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    """``2026-04-08T09:22:41.663Z``: ISO 8601 in UTC with milliseconds."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _property_value(value: Any) -> str | None:
    """A property value as HubSpot's API types it: a string (``None`` means "leave out")."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _properties(values: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in values.items():
        text = _property_value(value)
        if text is not None:
            out[str(name)] = text
    return out


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _due_timestamp(due: date) -> str:
    """A due date as a moment: noon UTC falls on that calendar day in every UTC±11 zone."""
    return _iso(datetime.combine(due, day_time(12, 0), tzinfo=UTC))


def _units(text: str) -> int:
    """Length in UTF-16 code units, as HubSpot (Java) counts characters."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _note_body(text: str) -> str:
    """Plain `text` (the transcript) as HTML paragraphs within a text property's limit;
    when it is too long, the longest cut of the text whose HTML fits, marked ``[…]``."""
    body = paragraphs_html(text)
    if _units(body) <= _TEXT_LIMIT:
        return body
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if _units(paragraphs_html(truncate_to(text, middle, " […]"))) <= _TEXT_LIMIT:
            low = middle
        else:
            high = middle - 1
    return paragraphs_html(truncate_to(text, low, " […]"))


def _number_for_hubspot(raw: str) -> str:
    number = parse_sipgate(raw)
    return number.e164 if number is not None else raw


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DIGITS = re.compile(r"\+?\d[\d ()/.-]{4,}\d")


def _scrub(text: str, limit: int = 300) -> str:
    """HubSpot's error text without e-mail addresses and with digit runs masked."""
    text = _EMAIL.sub("<e-mail>", text)
    text = _DIGITS.sub(lambda m: mask_number(m.group(0)), text)
    return truncate_to(text, limit)


def _body_json(body: Any) -> dict[str, Any]:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str):
        return {}
    try:
        decoded = json.loads(body)
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


def _missing_scopes(info: Mapping[str, Any]) -> list[str]:
    scopes: list[str] = []
    for error in info.get("errors") or ():
        context = error.get("context") if isinstance(error, Mapping) else None
        if not isinstance(context, Mapping):
            continue
        for key in ("requiredGranularScopes", "requiredScopes", "requiredAnyScopes"):
            for scope in context.get(key) or ():
                if isinstance(scope, str) and scope not in scopes:
                    scopes.append(scope)
    return scopes


def _safe_message(info: Mapping[str, Any]) -> str:
    """HubSpot's error message, reduced to what names the problem without personal data."""
    message = str(info.get("message") or "").strip()
    prefix = "Property values were not valid: "
    if message.startswith(prefix):
        try:
            problems = json.loads(message.removeprefix(prefix))
            named = [f"{p.get('name')} ({p.get('error')})" for p in problems if isinstance(p, dict)]
            message = prefix + ", ".join(named)
        except ValueError:
            pass
    context = info.get("context")
    if isinstance(context, Mapping) and context:
        message += f" [{', '.join(sorted(str(k) for k in context))}]"
    return _scrub(message or "no message")


def _header(headers: Any, name: str) -> str | None:
    getter = getattr(headers, "get", None)
    if getter is None:
        return None
    value = getter(name)
    return str(value) if value is not None else None


def _seconds(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


def _never_sent(exc: BaseException) -> bool:
    """True when urllib3 failed before the request left (connect errors): nothing was done."""
    reason = exc.reason if isinstance(exc, MaxRetryError) else exc
    return isinstance(reason, ConnectTimeoutError)  # NewConnectionError is a subclass


def _mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:2]}***@{domain}" if domain else "***"


# --- errors ----------------------------------------------------------------------------------


class _OutcomeUnknown(RetryableError):
    """The request may have been applied or not (timeout or 5xx after sending)."""


class _Rejected(PermanentError):
    """HubSpot answered with a 4xx the request cannot get past; `status`/`info` tell which."""

    def __init__(self, message: str, status: int, info: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.status = status
        self.info = dict(info)


# --- what gets written -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Link:
    """One association of a new object with an existing record."""

    to_type: str  # "contacts", "companies", "deals"
    to_id: str
    type_id: int

    def body(self) -> dict[str, Any]:
        return {
            "to": {"id": self.to_id},
            "types": [{"associationCategory": _CATEGORY, "associationTypeId": self.type_id}],
        }


@dataclass(frozen=True)
class _Create:
    """One object to create: type (``calls``, ``tasks``…), properties, associations."""

    object_type: str
    properties: Mapping[str, str]
    links: tuple[_Link, ...] = ()

    def body(self) -> dict[str, Any]:
        return {"properties": dict(self.properties), "associations": [k.body() for k in self.links]}


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


# --- the adapter -----------------------------------------------------------------------------


class HubSpotAdapter(Adapter):
    """Logs calls in HubSpot; see the module docstring for what is written and how."""

    type_name = "hubspot"
    config_schema = HubSpotOptions
    searchable_objects = ("contact", "company")
    creatable_objects = ("contact",)
    field_limits = {"hs_call_title": _TEXT_LIMIT, "hs_call_body": _TEXT_LIMIT}
    supports_overflow = True  # a note takes what does not fit the call

    def __init__(
        self,
        name: str,
        options: Mapping[str, Any],
        *,
        limiter: RateLimiter | None = None,
        wall_clock: Callable[[], float] = time.time,
        cache_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Build the SDK client and the rate limiter; nothing is sent yet.

        `limiter` replaces the one built from ``rate_limit``/``rate_limit_store``; `wall_clock`
        (epoch seconds: pending creates, daily limit) and `cache_clock` are for tests.
        """
        super().__init__(name, options)
        self.access_token: str = options["access_token"]
        self.base_url: str = str(options.get("base_url") or "https://api.hubapi.com").rstrip("/")
        connect = float(options.get("connect_timeout", 5.0))
        read = float(options.get("read_timeout", 30.0))
        self.timeout = (connect, read)
        self.call_id_property: str = options.get("call_id_property") or CALL_ID_PROPERTY
        self.unique_call_property: str | None = options.get("unique_call_property")
        self.associate_company = bool(options.get("associate_company", True))
        self.deal_rule: str = options.get("deal_rule") or "none"
        self.ticket: Mapping[str, Any] | None = options.get("ticket")
        self.portal_zone = ZoneInfo(options.get("portal_time_zone") or "UTC")
        self.wall_clock = wall_clock
        self.cache = _RecordCache(float(options.get("cache_seconds", 300.0)), cache_clock)
        self._owner_cache: dict[str, tuple[float, str | None]] = {}
        self._cache_clock = cache_clock
        #: What `check` verifies: owner references by config path, call properties by name.
        self.owner_refs: dict[str, str] = {
            f"owners.{user}": owner for user, owner in (options.get("owners") or {}).items()
        }
        self.checked_properties: list[str] = list(
            dict.fromkeys(
                [
                    self.call_id_property,
                    *([self.unique_call_property] if self.unique_call_property else []),
                    *(options.get("required_properties") or ()),
                ]
            )
        )

        if limiter is None:
            rate = options.get("rate_limit") or {}
            budgets = {
                "general": Budget(int(rate.get("requests_per_10s", 90)), 10.0),
                "search": Budget(int(rate.get("searches_per_second", 4)), 1.0),
            }
            credential = hashlib.sha256(f"{self.base_url}|{self.access_token}".encode())
            limiter = RateLimiter(
                budgets,
                open_store(options.get("rate_limit_store")),
                namespace=f"hubspot:{credential.hexdigest()[:16]}",
                in_flight_seconds=connect + read + 1.0,
            )
        self.limiter = limiter

        self._api_clients: dict[str, Any] = {}
        self._factory_lock = threading.Lock()
        client = HubSpot(
            access_token=self.access_token,
            host=self.base_url,
            retry=Retry(0, read=False, redirect=False),
            api_factory=self._api_factory,
        )
        # Every `client.crm.….…_api` access builds a new API object: build them once.
        self._basic = client.crm.objects.basic_api
        self._batch = client.crm.objects.batch_api
        self._search = client.crm.objects.search_api
        self._owners = client.crm.owners.owners_api
        self._properties = client.crm.properties.core_api
        self._associations = client.crm.associations.v4.basic_api

    @classmethod
    def from_config(cls, target: TargetConfig) -> Self:
        """The adapter for `target`; `check` also verifies the policy's owners (users and
        fallback) and that every call property the mapping writes exists in HubSpot."""
        adapter = cls(target.name, target.options)
        owners = target.policy.owners
        adapter.owner_refs.update({f"owners.users.{u}": o for u, o in owners.users.items()})
        if owners.fallback:
            adapter.owner_refs["owners.fallback"] = owners.fallback
        mapped = [*target.policy.fields, *target.policy.limits]
        adapter.checked_properties = list(dict.fromkeys([*adapter.checked_properties, *mapped]))
        return adapter

    def _api_factory(self, package: Any, api_name: str, config: Mapping[str, Any]) -> Any:
        """One ApiClient (one connection pool) per SDK package, shared by its APIs."""
        with self._factory_lock:
            api_client = self._api_clients.get(package.__name__)
            if api_client is None:
                configuration = package.Configuration()
                for key, value in config.items():
                    if key == "retry":
                        configuration.retries = value
                    elif key != "api_key":
                        setattr(configuration, key, value)
                api_client = package.ApiClient(configuration=configuration)
                try:
                    sdk = version("hubspot-api-client")
                except PackageNotFoundError:  # pragma: no cover - the SDK is installed
                    sdk = "unknown"
                api_client.user_agent = f"sipgate-crm-connector hubspot-api-client-python/{sdk}"
                self._api_clients[package.__name__] = api_client
        return getattr(package, api_name)(api_client=api_client)

    # ------------------------------------------------------------------ sending and errors

    def _send(
        self,
        kind: str,
        operation: str,
        function: Callable[..., Any],
        *args: Any,
        before_send: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call one SDK method under the rate limiter with timeouts; map failures to ours."""
        slot = self.limiter.acquire(kind)
        try:
            if before_send is not None:
                before_send()
            return function(*args, _request_timeout=self.timeout, **kwargs)
        except AdapterError:
            raise
        except Exception as exc:
            error = self._translate(exc, operation, kind)
            if error is None:
                raise
            raise error from exc
        finally:
            self.limiter.release(slot)

    def _translate(self, exc: Exception, operation: str, kind: str) -> AdapterError | None:
        status = getattr(exc, "status", None)
        if isinstance(status, int) and hasattr(exc, "body"):  # any SDK package's ApiException
            return self._http_error(status, getattr(exc, "body", None), exc, operation, kind)
        if isinstance(exc, HTTPError | OSError):
            what = type(exc.reason if isinstance(exc, MaxRetryError) else exc).__name__
            if _never_sent(exc):
                return RetryableError(f"Cannot connect to HubSpot for {operation} ({what}).")
            return _OutcomeUnknown(f"HubSpot did not answer {operation} ({what}).")
        return None

    def _http_error(
        self, status: int, body: Any, exc: Exception, operation: str, kind: str
    ) -> AdapterError:
        info = _body_json(body)
        headers = getattr(exc, "headers", None)
        category = str(info.get("category") or info.get("errorType") or "")
        if status == 429:
            policy = info.get("policyName")
            if policy == "DAILY":
                return self._daily_limit_reached()
            wait = _seconds(_header(headers, "Retry-After"))
            if wait is None:
                wait = self._rate_limit_wait(headers, kind)
            return RetryableError(
                f"HubSpot rate limit reached ({policy or kind}) while {operation}.",
                retry_after=wait,
            )
        if status == 401:
            return _Rejected(
                "HubSpot rejected the access token (401): check the target's access_token "
                "(e.g. ${HUBSPOT_TOKEN}) and that the app and its token still exist.",
                status,
                info,
            )
        if status == 403:
            scopes = _missing_scopes(info)
            if scopes or category == "MISSING_SCOPES":
                named = ", ".join(scopes) or "not named by HubSpot"
                return _Rejected(
                    f"The HubSpot access token lacks scopes needed for {operation}: {named}. "
                    "Add them to the app and update the token.",
                    status,
                    info,
                )
            return _Rejected(
                f"HubSpot refused {operation} (403 {category}): {_safe_message(info)}",
                status,
                info,
            )
        if status == 0 or status >= 500:
            return _OutcomeUnknown(f"HubSpot failed {operation} ({status or 'connection'}).")
        return _Rejected(
            f"HubSpot rejected {operation} ({status} {category}): {_safe_message(info)}",
            status,
            info,
        )

    @staticmethod
    def _rate_limit_wait(headers: Any, kind: str) -> float:
        if kind == "search":
            return 1.0  # searches: 5 per second; their 429s carry no headers
        if _header(headers, "X-HubSpot-RateLimit-Secondly-Remaining") == "0":
            return 1.0
        interval = _seconds(_header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds"))
        return interval / 1000 if interval else 10.0

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.wall_clock(), tz=UTC)

    def _daily_limit_reached(self) -> TargetParked:
        """Park the target until the portal's next midnight (or an hour, see module doc)."""
        now = self._now()
        previous = _parse_time(self.memo.get(_DAILY_MEMO))
        if previous is not None and previous <= now < previous + timedelta(days=1):
            until = now + timedelta(hours=1)
            reason = "still used up after the expected reset; trying again hourly"
        else:
            local = now.astimezone(self.portal_zone)
            midnight = datetime.combine(
                local.date() + timedelta(days=1), day_time(0), tzinfo=self.portal_zone
            )
            until = midnight.astimezone(UTC) + timedelta(minutes=1)
            self.memo.set(_DAILY_MEMO, _iso(until))
            reason = f"it resets at midnight ({self.portal_zone.key})"
        return TargetParked(f"HubSpot's daily API limit is used up; {reason}.", until=until)

    # ------------------------------------------------------------------ searching

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
            response = self._send(
                "search",
                f"searching {_OBJECTS[object_type]} by phone",
                self._search.do_search,
                _OBJECTS[object_type],
                self._phone_search_body(object_type, number),
            )
            found = [self._record(object_type, r) for r in response.results or ()]
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

    # ------------------------------------------------------------------ creating contacts

    def create_record(
        self, object_type: str, number: PhoneNumber, fields: Mapping[str, Any], journal: Journal
    ) -> CrmRecord:
        """A contact with ``phone`` = +E.164 (plus `fields`) for an unknown caller.

        At most one contact per number: the journal, then the shared memo ("number → contact
        id", or "being created since …") are consulted first; while another worker creates
        the contact this raises `RetryableError` with a short ``retry_after``.
        """
        if object_type not in self.creatable_objects:
            raise PermanentError(f"HubSpot targets can create contacts only, not {object_type}.")
        recorded = journal.get("contact")
        if recorded:
            return self._new_contact(str(recorded), number)
        key = "hubspot:contact:" + hashlib.sha256(number.e164.encode()).hexdigest()[:32]
        stamp = f"creating:{self.wall_clock():.3f}"
        if not self.memo.reserve(key, stamp):
            existing, judged = self._contact_in_memo(key, number, journal)
            if existing is not None:
                journal.record("contact", existing.id)
                return existing
            # Nobody finished this contact: take over, unless another delivery just did.
            if not self.memo.replace(key, judged or None, stamp):
                raise RetryableError(
                    "Another delivery took over creating the HubSpot contact for this caller.",
                    retry_after=5.0,
                )
        body = {"properties": {**_properties(fields), "phone": number.e164}, "associations": []}
        try:
            created = self._send(
                "general",
                "creating a contact",
                self._basic.create,
                "contacts",
                body,
                before_send=lambda: journal.record("contact_pending", self.wall_clock()),
            )
        except _OutcomeUnknown:
            raise  # the memo keeps "creating": the retry looks for the contact first
        except AdapterError:
            self.memo.delete(key)  # nothing was created; let the next delivery try
            journal.record("contact_pending", None)
            raise
        contact_id = str(created.id)
        self.memo.set(key, contact_id)
        journal.record("contact", contact_id)
        record = self._new_contact(contact_id, number)
        self.cache.put(("contact", number.e164), [record])
        log.info("%s: created contact %s for %s", self.name, contact_id, mask_number(number.e164))
        return record

    def _contact_in_memo(
        self, key: str, number: PhoneNumber, journal: Journal
    ) -> tuple[CrmRecord | None, str]:
        """The contact the memo knows for this number (None when this delivery should
        (re)create it) and the memo value that judgement rests on; raises `RetryableError`
        while another delivery is creating it."""
        value = self.memo.get(key) or ""
        if value and not value.startswith("creating:"):
            return self._existing_contact(value), value  # None: deleted or merged in HubSpot
        if not value:
            return None, value
        try:
            since = float(value.removeprefix("creating:"))
        except ValueError:
            since = 0.0
        age = self.wall_clock() - since
        ours = journal.get("contact_pending") is not None  # our last attempt's outcome is unknown
        if age < PENDING_SETTLE_SECONDS and not ours:
            raise RetryableError(
                "Another delivery is creating the HubSpot contact for this caller.",
                retry_after=max(2.0, min(10.0, PENDING_SETTLE_SECONDS - age)),
            )
        found = self._find_created_contact(number)
        if found is not None:
            self.memo.set(key, found.id)
            return found, found.id
        self._wait_for_index(since, "contact")
        return None, value

    @staticmethod
    def _new_contact(contact_id: str, number: PhoneNumber) -> CrmRecord:
        return CrmRecord("contact", contact_id, phones=(number.e164,), extra={"created": True})

    def _existing_contact(self, contact_id: str) -> CrmRecord | None:
        """The contact the memo names, read by id (no search lag); None if it is gone."""
        try:
            found = self._send(
                "general",
                "reading a contact",
                self._basic.get_by_id,
                "contacts",
                contact_id,
                properties=list(_CONTACT_PROPERTIES),
            )
        except _Rejected as exc:
            if exc.status == 404:
                return None
            raise
        return self._record("contact", found)

    def _find_created_contact(self, number: PhoneNumber) -> CrmRecord | None:
        body = {
            "filterGroups": [
                {"filters": [{"propertyName": "phone", "operator": "EQ", "value": number.e164}]}
            ],
            "properties": list(_CONTACT_PROPERTIES),
            "sorts": [{"propertyName": "createdate", "direction": "ASCENDING"}],
            "limit": 1,
        }
        response = self._send(
            "search", "looking up a new contact", self._search.do_search, "contacts", body
        )
        results = list(response.results or ())
        return self._record("contact", results[0]) if results else None

    # ------------------------------------------------------------------ owners and checks

    def resolve_owner(self, email: str) -> str | None:
        """The id of the active HubSpot owner with this e-mail address, or ``None``.

        Answers are kept for ``cache_seconds``: the planner asks for every call.
        """
        key = email.strip().casefold()
        cached = self._owner_cache.get(key)
        if cached is not None and cached[0] > self._cache_clock():
            return cached[1]
        page = self._send(
            "general", "looking up an owner", self._owners.get_page, email=email, limit=1
        )
        results = list(page.results or ())
        owner = str(results[0].id) if results else None
        if self.cache.ttl > 0:
            self._owner_cache[key] = (self._cache_clock() + self.cache.ttl, owner)
        return owner

    def required_scopes(self) -> list[str]:
        """The scopes this target's options need."""
        scopes = list(REQUIRED_SCOPES)
        if self.associate_company:
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

    # ------------------------------------------------------------------ planning a write

    def _contacts(self, job: DeliveryJob) -> list[str]:
        return list(dict.fromkeys(m.id for m in job.matches if m.object_type == "contact"))

    def _companies(self, job: DeliveryJob) -> list[str]:
        ids = [m.id for m in job.matches if m.object_type == "company"]
        if self.associate_company:
            ids += [m.parent_id for m in job.matches if m.object_type == "contact" and m.parent_id]
        return list(dict.fromkeys(ids))

    def _links(self, job: DeliveryJob, object_type: str) -> tuple[_Link, ...]:
        links = [
            _Link("contacts", cid, ASSOCIATION_TYPES[(object_type, "contacts")])
            for cid in self._contacts(job)
        ]
        if object_type == "calls" or not links:
            # Follow-ups go on the contacts; on companies only when no contact matched.
            links += [
                _Link("companies", cid, ASSOCIATION_TYPES[(object_type, "companies")])
                for cid in self._companies(job)
            ]
        return tuple(links)

    def _call_properties(self, job: DeliveryJob) -> dict[str, str]:
        report = job.report
        owned: dict[str, Any] = {
            "hs_timestamp": _iso(report.start_time),
            "hs_call_direction": "INBOUND" if report.direction == "IN" else "OUTBOUND",
            "hs_call_duration": int(report.duration.total_seconds() * 1000),
            "hs_call_from_number": _number_for_hubspot(report.from_number) or None,
            "hs_call_to_number": _number_for_hubspot(report.to_number) or None,
            "hs_call_status": "COMPLETED",
            "hubspot_owner_id": job.owner_id,
            self.call_id_property: report.call_id,
        }
        if self.unique_call_property:
            owned.pop(self.unique_call_property, None)  # it is the upsert's id
        return {**_properties(job.fields), **_properties(owned)}

    def _call_create(self, job: DeliveryJob, deal_id: str | None) -> _Create:
        links = self._links(job, "calls")
        if deal_id:
            links += (_Link("deals", deal_id, ASSOCIATION_TYPES[("calls", "deals")]),)
        return _Create("calls", self._call_properties(job), links)

    def _task_creates(self, job: DeliveryJob) -> list[_Create]:
        links = self._links(job, "tasks")
        return [self._task_create(spec, job, links) for spec in job.tasks[:_MAX_BATCH]]

    @staticmethod
    def _task_create(spec: TaskSpec, job: DeliveryJob, links: tuple[_Link, ...]) -> _Create:
        properties = _properties(
            {
                "hs_task_subject": spec.subject,
                "hs_task_body": paragraphs_html(spec.body) or None,
                "hs_timestamp": _due_timestamp(spec.due),
                "hs_task_priority": _PRIORITIES.get(spec.priority.lower(), "MEDIUM"),
                "hs_task_status": "NOT_STARTED",
                "hs_task_type": "TODO",
                "hubspot_owner_id": spec.owner_id or job.owner_id,
            }
        )
        return _Create("tasks", properties, links)

    def _note_create(self, job: DeliveryJob) -> _Create | None:
        if not job.overflow.strip():
            return None
        properties = _properties(
            {
                "hs_timestamp": _iso(job.report.start_time),
                "hs_note_body": _note_body(job.overflow),
                "hubspot_owner_id": job.owner_id,
            }
        )
        return _Create("notes", properties, self._links(job, "notes"))

    def _ticket_create(self, job: DeliveryJob) -> _Create | None:
        channel = job.report.channel
        if not self.ticket or channel is None:
            return None
        wanted = {str(c).casefold() for c in self.ticket["channels"]}
        if channel.id.casefold() not in wanted and channel.name.casefold() not in wanted:
            return None
        subject = job.report.headline or str(job.fields.get("hs_call_title") or "") or "Call"
        properties = _properties(
            {
                "subject": truncate_to(subject, 255),
                "content": job.report.summary or None,
                "hs_pipeline": self.ticket["pipeline"],
                "hs_pipeline_stage": self.ticket["stage"],
                "hubspot_owner_id": job.owner_id,
            }
        )
        return _Create("tickets", properties, self._links(job, "tickets"))

    def _deal_search_body(self, contact_id: str) -> dict[str, Any]:
        return {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "associations.contact",
                            "operator": "EQ",
                            "value": contact_id,
                        }
                    ]
                }
            ],
            "properties": ["dealstage", "hs_is_closed", "hs_lastmodifieddate", "pipeline"],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "DESCENDING"}],
            "limit": 20,
        }

    def describe_write(self, job: DeliveryJob) -> list[dict[str, Any]]:
        """Every request `write` would send for `job`, with exact bodies; sends nothing.

        The deal of ``deal_rule: most_recent_open`` is found at write time: its search is
        listed, and the call's association with the deal (206) is described there.
        """
        ops: list[dict[str, Any]] = []
        contacts = self._contacts(job)
        if self.deal_rule == "most_recent_open" and contacts:
            ops.append(
                {
                    "op": "search",
                    "object": "deals",
                    "method": "POST",
                    "path": "/crm/v3/objects/deals/search",
                    "body": self._deal_search_body(contacts[0]),
                    "then": "associate the call with the most recently modified open deal "
                    f"(type {ASSOCIATION_TYPES[('calls', 'deals')]})",
                }
            )
        call = self._call_create(job, None)
        if self.unique_call_property:
            ops.append(
                {
                    "op": "upsert",
                    "object": "calls",
                    "method": "POST",
                    "path": "/crm/v3/objects/calls/batch/upsert",
                    "body": {"inputs": [self._upsert_input(job, call)]},
                }
            )
            ops.extend(
                {
                    "op": "associate",
                    "object": "calls",
                    "method": "PUT",
                    "path": f"/crm/v4/objects/calls/{{call id}}/associations/{link.to_type}/"
                    f"{link.to_id}",
                    "body": [{"associationCategory": _CATEGORY, "associationTypeId": link.type_id}],
                }
                for link in call.links
            )
        else:
            ops.append(self._describe_create(call))
        tasks = self._task_creates(job)
        if tasks:
            ops.append(
                {
                    "op": "batch/create",
                    "object": "tasks",
                    "method": "POST",
                    "path": "/crm/v3/objects/tasks/batch/create",
                    "body": {"inputs": [t.body() for t in tasks]},
                }
            )
        for extra in (self._note_create(job), self._ticket_create(job)):
            if extra is not None:
                ops.append(self._describe_create(extra))
        return ops

    @staticmethod
    def _describe_create(create: _Create) -> dict[str, Any]:
        return {
            "op": "create",
            "object": create.object_type,
            "method": "POST",
            "path": f"/crm/v3/objects/{create.object_type}",
            "body": create.body(),
        }

    def _upsert_input(self, job: DeliveryJob, call: _Create) -> dict[str, Any]:
        return {
            "idProperty": self.unique_call_property,
            "id": job.report.call_id,
            "properties": dict(call.properties),
        }

    # ------------------------------------------------------------------ writing

    def write(self, job: DeliveryJob, journal: Journal) -> WriteResult:
        """Log the call, then its tasks, note and ticket; each step at most once per call id.

        The call's properties are `job.fields` plus the ones the adapter owns (those win on a
        clash). Refs name every object written; the journal also keeps ``<step>_pending``
        (epoch seconds of the last create sent) for the lookup after an unknown outcome.
        """
        call_id = journal.get("call")
        if call_id is None:
            call_id = self._write_call(job, journal)
        elif self.unique_call_property and not journal.get("call_associated"):
            self._associate(str(call_id), self._call_create(job, self._deal(job, journal)), journal)
        refs: dict[str, Any] = {"call": str(call_id)}
        tasks = self._task_creates(job)
        if tasks:
            refs["tasks"] = self._write_tasks(tasks, journal)
        note = self._note_create(job)
        if note is not None:
            refs["note"] = self._write_single("note", note, journal)
        ticket = self._ticket_create(job)
        if ticket is not None:
            refs["ticket"] = self._write_single("ticket", ticket, journal)
        return WriteResult(refs=refs)

    def _deal(self, job: DeliveryJob, journal: Journal) -> str | None:
        """The deal ``deal_rule`` picks (looked up once per delivery), or None."""
        contacts = self._contacts(job)
        if self.deal_rule != "most_recent_open" or not contacts:
            return None
        recorded = journal.get("deal")
        if recorded is not None:
            return str(recorded) or None
        response = self._send(
            "search",
            "looking up open deals",
            self._search.do_search,
            "deals",
            self._deal_search_body(contacts[0]),
        )
        deal_id = ""
        for result in response.results or ():
            props: Mapping[str, Any] = result.properties or {}
            closed = str(props.get("hs_is_closed") or "").lower() == "true"
            if not closed and str(props.get("dealstage") or "") not in _CLOSED_STAGES:
                deal_id = str(result.id)
                break
        journal.record("deal", deal_id)
        return deal_id or None

    def _write_call(self, job: DeliveryJob, journal: Journal) -> str:
        call = self._call_create(job, self._deal(job, journal))
        if self.unique_call_property:
            response = self._send(
                "general",
                "upserting the call",
                self._batch.upsert,
                "calls",
                {"inputs": [self._upsert_input(job, call)]},
            )
            results = list(response.results or ())
            if not results:
                raise PermanentError(
                    f"HubSpot did not upsert the call: {self._batch_errors(response)}"
                )
            call_id = str(results[0].id)
            journal.record("call", call_id)
            self._associate(call_id, call, journal)
            return call_id
        pending = journal.get("call_pending")
        if pending:
            found = self._find_call(job.report.call_id)
            if found is not None:
                journal.record("call", found)
                return found
            self._wait_for_index(float(pending), "call")
        try:
            created = self._send(
                "general",
                "creating the call",
                self._basic.create,
                "calls",
                call.body(),
                before_send=lambda: journal.record("call_pending", self.wall_clock()),
            )
        except _OutcomeUnknown:
            raise
        except _Rejected as exc:
            journal.record("call_pending", None)
            self._forget_stale_matches(job, exc)
            raise
        except AdapterError:
            journal.record("call_pending", None)
            raise
        call_id = str(created.id)
        journal.record("call", call_id)
        return call_id

    def _wait_for_index(self, pending_since: float, what: str) -> None:
        age = self.wall_clock() - pending_since
        if age < PENDING_SETTLE_SECONDS:
            raise RetryableError(
                f"Whether the last attempt created the HubSpot {what} is unknown and HubSpot's "
                "search may not show it yet; looking again shortly.",
                retry_after=PENDING_SETTLE_SECONDS - age,
            )

    def _forget_stale_matches(self, job: DeliveryJob, exc: _Rejected) -> None:
        """A 400 for association targets that no longer exist: when they came from the cache,
        drop them and retry (the next attempt searches afresh)."""
        context = exc.info.get("context")
        invalid = isinstance(context, Mapping) and "INVALID_OBJECT_IDS" in context
        ids = [m.id for m in job.matches]
        if exc.status == 400 and invalid and self.cache.holds(ids):
            self.cache.forget(ids)
            raise RetryableError(
                "A cached HubSpot record no longer exists; searching again.", retry_after=1.0
            ) from exc

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

    def _associate(self, call_id: str, call: _Create, journal: Journal) -> None:
        """Associate an upserted call (idempotent PUTs), then record that it is done."""
        for link in call.links:
            self._send(
                "general",
                "associating the call",
                self._associations.create,
                "calls",
                call_id,
                link.to_type,
                link.to_id,
                [{"associationCategory": _CATEGORY, "associationTypeId": link.type_id}],
            )
        journal.record("call_associated", True)

    @staticmethod
    def _batch_errors(response: Any) -> str:
        errors = getattr(response, "errors", None) or []
        named = sorted({str(getattr(e, "category", "") or "error") for e in errors})
        return ", ".join(named) or "no results"

    def _write_tasks(self, tasks: list[_Create], journal: Journal) -> list[str]:
        recorded = journal.get("tasks")
        if recorded is not None:
            return [str(t) for t in recorded]
        pending = journal.get("tasks_pending")
        if pending:
            found = self._find_recent(tasks, float(pending))
            if found:
                journal.record("tasks", found)
                return found
            self._wait_for_index(float(pending), "tasks")
        try:
            response = self._send(
                "general",
                "creating the follow-up tasks",
                self._batch.create,
                "tasks",
                {"inputs": [t.body() for t in tasks]},
                before_send=lambda: journal.record("tasks_pending", self.wall_clock()),
            )
        except _OutcomeUnknown:
            raise
        except AdapterError:
            journal.record("tasks_pending", None)
            raise
        ids = [str(r.id) for r in response.results or ()]
        journal.record("tasks", ids)
        if len(ids) < len(tasks):
            raise PermanentError(
                f"HubSpot created {len(ids)} of {len(tasks)} follow-up tasks: "
                f"{self._batch_errors(response)}."
            )
        return ids

    def _write_single(self, step: str, create: _Create, journal: Journal) -> str:
        recorded = journal.get(step)
        if recorded is not None:
            return str(recorded)
        pending = journal.get(f"{step}_pending")
        if pending:
            found = self._find_recent([create], float(pending))
            if found:
                journal.record(step, found[0])
                return found[0]
            self._wait_for_index(float(pending), step)
        try:
            created = self._send(
                "general",
                f"creating the {step}",
                self._basic.create,
                create.object_type,
                create.body(),
                before_send=lambda: journal.record(f"{step}_pending", self.wall_clock()),
            )
        except _OutcomeUnknown:
            raise
        except AdapterError:
            journal.record(f"{step}_pending", None)
            raise
        object_id = str(created.id)
        journal.record(step, object_id)
        return object_id

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

    def close(self) -> None:
        """Drop the SDK's connection pools and close a shared rate limit store."""
        for api_client in self._api_clients.values():
            api_client.rest_client.pool_manager.clear()
        self.limiter.close()
