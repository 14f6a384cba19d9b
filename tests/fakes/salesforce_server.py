"""Stateful local Salesforce REST API test server (HTTPS on loopback).

``SalesforceTestServer`` runs a threaded werkzeug server on ``127.0.0.1`` (random port)
with a ``trustme`` certificate whose CA PEM is exposed as ``ca_bundle_path``.  It keeps
records in memory and answers the subset of Salesforce's documented REST API that the
connector uses, with Salesforce's documented request/response shapes:

* ``POST /services/oauth2/token`` (client credentials, JWT bearer),
* ``/services/data/vNN.N/`` ``query``, ``queryAll``, ``search`` (SOSL), ``limits``,
  ``sobjects`` (global describe), ``sobjects/{Type}`` (create),
  ``sobjects/{Type}/describe``, ``sobjects/{Type}/{Id}`` (GET/PATCH/DELETE),
  ``sobjects/{Type}/{ExternalIdField}/{value}`` (GET, PATCH upsert),
  ``composite/sobjects`` (POST create, PATCH update; up to 200 records).

Errors use Salesforce's bodies: ``[{"message", "errorCode", "fields"}]`` for REST calls,
``{"statusCode", "message", "fields"}`` inside sObject Collection results and
``{"error", "error_description"}`` for OAuth.  Every data response carries
``Sforce-Limit-Info: api-usage=N/M``.

Example::

    with SalesforceTestServer() as server:
        contact_id = server.add_contact(LastName="Mustermann", Phone="0211 63553400")
        session = requests.Session()
        session.verify = server.ca_bundle_path
        sf = Salesforce(instance_url=server.instance_url, session_id=server.issue_token(),
                        session=session)
        sf.search(r"FIND {\\+49 \\(211\\) 63553400} IN PHONE FIELDS RETURNING Contact(Id)")

Known approximations (each one documented where it is implemented):

* SOQL is a subset (SELECT fields incl. one-level relationship paths, WHERE with
  ``= != <> < <= > >= LIKE IN NOT IN``, AND/OR/NOT with parentheses, ORDER BY, LIMIT,
  OFFSET).  Anything else (aggregates, sub-queries, GROUP BY, date literals such as
  ``TODAY``, bind variables, ...) answers ``400 MALFORMED_QUERY`` whose message starts
  with ``SalesforceTestServer does not support``.
* SOSL phone matching compares digits only (see ``_phone_digits_match``); text matching
  is word based; relevance ordering is replaced by insertion order.
* The search index lag (``search_lag_seconds``) applies to records *created* through
  the API; updates are visible to SOSL immediately.

The org's schema and describe data are in ``salesforce_schema``, the SOQL and SOSL parsers in
``salesforce_soql`` and ``salesforce_sosl``, the error bodies in ``salesforce_errors``; lifecycle,
request log and fault rules come from ``base``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import itertools
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import jwt
import requests
from requests.adapters import HTTPAdapter
from werkzeug.wrappers import Request, Response

# The timeout adapter the Salesforce adapter mounts; tests mount the same one.
from connector.adapters.kit.http import TimeoutHTTPAdapter
from tests.fakes.base import FakeServer, Fault, LoggedRequest, RequestKind
from tests.fakes.salesforce_errors import UNSUPPORTED, ApiError, RecordError, malformed_query
from tests.fakes.salesforce_schema import (
    DATE_RE,
    ENGLISH_TASK_PRIORITIES,
    ENGLISH_TASK_STATUSES,
    KEY_PREFIXES,
    FieldDef,
    PicklistValue,
    SObjectDef,
    TaskPriorityValue,
    TaskStatusValue,
    build_standard_schema,
    format_datetime,
    parse_datetime,
)
from tests.fakes.salesforce_soql import (
    BoolOp,
    Not,
    OrderItem,
    SoqlLiteral,
    SoqlParser,
    SoqlQuery,
    like_to_regex,
)
from tests.fakes.salesforce_sosl import (
    ReturningSpec,
    SoslQuery,
    parse_sosl,
    phone_alternatives,
    returning_query,
    text_expression_matches,
)

__all__ = [
    "JWT_BEARER_GRANT",
    "RedirectToServerAdapter",
    "SalesforceRequest",
    "SalesforceTestServer",
    "TimeoutHTTPAdapter",
    "to_18_char_id",
]

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TEXT_TYPES = frozenset(
    {"string", "textarea", "email", "phone", "url", "picklist", "multipicklist", "combobox"}
)
_ID_TYPES = frozenset({"id", "reference"})
_NUMBER_TYPES = frozenset({"int", "double", "currency", "percent"})
_NOT_FOUND = "The requested resource does not exist"
_SESSION_INVALID = "Session expired or invalid"


def to_18_char_id(record_id: str) -> str:
    """Return the case-insensitive 18-character form of a 15- or 18-character id.

    Implements Salesforce's documented checksum: for each 5-character chunk, a bit mask
    of the upper-case letters selects one character of ``A-Z0-5``.
    """
    if len(record_id) == 18:
        return record_id
    if len(record_id) != 15:
        raise ValueError(f"not a Salesforce id: {record_id!r}")
    suffix = ""
    for chunk_start in range(0, 15, 5):
        mask = 0
        for bit, char in enumerate(record_id[chunk_start : chunk_start + 5]):
            if "A" <= char <= "Z":
                mask |= 1 << bit
        suffix += _ID_SUFFIX_ALPHABET[mask]
    return record_id + suffix


def _base62(number: int, width: int) -> str:
    digits = ""
    while number:
        number, remainder = divmod(number, 62)
        digits = _BASE62[remainder] + digits
    return digits.rjust(width, "0")


def _id15(record_id: str) -> str:
    return record_id[:15]


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and bool(_ID_RE.match(value))


# --------------------------------------------------------------------------- public helpers


@dataclass(frozen=True, kw_only=True)
class SalesforceRequest(LoggedRequest):
    """One request as the server saw it, with the API version of a data call (``kind`` "api",
    ``/services/data/vNN.N/...``, counted against the limits) and the form of a token request
    (``kind`` "auth", secrets shown as ``***``)."""

    api_version: str | None = None
    form: dict[str, str] | None = None


class RedirectToServerAdapter(HTTPAdapter):
    """Sends requests for another host (e.g. ``acme.my.salesforce.com``) to the test server.

    simple-salesforce builds its login URL as ``https://{domain}.salesforce.com/...``;
    mounting this adapter for that prefix lets its real login code talk to the server.
    """

    def __init__(
        self, target_url: str, timeout: float | tuple[float, float] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.target = urlsplit(target_url)
        self.timeout = timeout

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | None = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Rewrite scheme and host of ``request`` to the server, keep path and query."""
        original = urlsplit(request.url or "")
        request.url = urlunsplit(
            (self.target.scheme, self.target.netloc, original.path, original.query, "")
        )
        return super().send(
            request,
            stream=stream,
            timeout=self.timeout if timeout is None else timeout,
            verify=verify,
            cert=cert,
            proxies=proxies,
        )


@dataclass
class _RecordFault:
    sobject: str | None
    error: RecordError
    remaining: int


@dataclass
class _ValidationRule:
    predicate: Callable[[dict[str, Any]], bool]
    message: str
    error_field: str | None


@dataclass
class _Session:
    user_id: str
    issued_at: float


def _kind(path: str, api_version: str | None) -> RequestKind:
    if api_version is not None:
        return "api"
    return "auth" if path.rstrip("/") == "/services/oauth2/token" else "other"


# --------------------------------------------------------------------------- server


class SalesforceTestServer(FakeServer[SalesforceRequest]):
    """In-memory Salesforce org served over HTTPS on ``127.0.0.1`` (see module docstring).

    Use as a context manager (or call ``start()``/``stop()``).  Important attributes:

    * ``instance_url`` -- ``https://127.0.0.1:PORT`` (pass to ``Salesforce(instance_url=)``)
    * ``ca_bundle_path`` -- PEM of the CA that signed the server certificate
    * ``consumer_key`` / ``consumer_secret`` -- accepted client credentials
    * ``integration_username`` -- username of the user tokens are issued for
    * ``search_lag_seconds`` -- SOSL index lag for records created through the API
    * ``api_limit`` / ``api_used`` -- daily API request limit and usage

    Injected failures (:meth:`fail_next`) are checked before authentication and don't count
    against the API limit; a ``str`` body is sent as ``text/html`` (like a load balancer error
    page), ``None`` gives a Salesforce-style error list.
    """

    name = "salesforce-test-server"

    def __init__(
        self,
        *,
        consumer_key: str = "3MVG9FakeConsumerKeyForTests",
        consumer_secret: str = "fake-consumer-secret",
        integration_username: str = "integration.user@example.com",
        task_statuses: Sequence[TaskStatusValue] = ENGLISH_TASK_STATUSES,
        task_priorities: Sequence[TaskPriorityValue] = ENGLISH_TASK_PRIORITIES,
        search_lag_seconds: float = 0.0,
        api_limit: int = 15000,
        query_batch_size: int = 2000,
        jwt_public_key: str | bytes | None = None,
        jwt_audiences: Iterable[str] = (
            "https://login.salesforce.com",
            "https://test.salesforce.com",
        ),
        phone_match: str = "suffix",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Configure the org; ``clock`` drives the search index lag (pass a ``ManualClock``)."""
        super().__init__(clock=clock, tls=True)
        if phone_match not in ("suffix", "exact"):
            raise ValueError("phone_match must be 'suffix' or 'exact'")
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.integration_username = integration_username
        self.search_lag_seconds = search_lag_seconds
        self.api_limit = api_limit
        self.api_used = 0
        self.query_batch_size = query_batch_size
        self.jwt_public_key = jwt_public_key
        self.jwt_audiences = set(jwt_audiences)
        self.phone_match = phone_match
        self.org_id = to_18_char_id("00D5g00000FaKeO")
        self.api_versions_used: set[str] = set()

        self._counter = itertools.count(1)
        self._last_ms = 0
        self._schema = build_standard_schema()
        self._records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in self._schema}
        self._deleted: dict[str, dict[str, Any]] = {}
        self._search_visible_at: dict[str, float] = {}
        self._sessions: dict[str, _Session] = {}
        self._refuse_logins: tuple[str, str] | None = None
        self._record_faults: list[_RecordFault] = []
        self._validation_rules: dict[str, list[_ValidationRule]] = {}
        self._cursors: dict[str, tuple[list[dict[str, Any]], int]] = {}
        self._case_numbers = itertools.count(1001)
        self._task_statuses: tuple[TaskStatusValue, ...] = ()
        self._task_priorities: tuple[TaskPriorityValue, ...] = ()
        self._current_user_id: str | None = None

        self.integration_user_id = self.add_user(
            Username=integration_username,
            FirstName="Integration",
            LastName="User",
            Email=integration_username,
            Alias="integ",
        )
        self.set_task_statuses(task_statuses)
        self.set_task_priorities(task_priorities)

    @property
    def instance_url(self) -> str:
        """``https://127.0.0.1:PORT`` (pass to ``Salesforce(instance_url=)``; while running)."""
        return self.url

    def client_session(
        self,
        *,
        timeout: float | tuple[float, float] | None = None,
        redirect_hosts: Iterable[str] = (),
    ) -> requests.Session:
        """Return a ``requests.Session`` that trusts the server's CA.

        ``trust_env`` is switched off: with it on, a ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``
        environment variable silently overrides ``Session.verify`` (psf/requests#3829).
        ``timeout`` mounts a ``TimeoutHTTPAdapter`` for ``https://``; ``redirect_hosts``
        (e.g. ``"login.salesforce.com"``, ``"acme.my.salesforce.com"``) are sent to this
        server so simple-salesforce's own login code can be exercised.
        """
        session = requests.Session()
        session.trust_env = False
        session.verify = self.ca_bundle_path
        if timeout is not None:
            session.mount("https://", TimeoutHTTPAdapter(timeout))
        for host in redirect_hosts:
            session.mount(f"https://{host}/", RedirectToServerAdapter(self.instance_url, timeout))
        return session

    # ------------------------------------------------------------------ sessions & limits

    def issue_token(self, user_id: str | None = None) -> str:
        """Create a valid access token (as the OAuth endpoint would) and return it."""
        token = f"{self.org_id[:15]}!AQ{secrets.token_urlsafe(48)}"
        self.add_session(token, user_id)
        return token

    def add_session(self, token: str, user_id: str | None = None) -> None:
        """Accept ``token`` as a valid ``Authorization: Bearer`` session id."""
        with self._lock:
            self._sessions[token] = _Session(user_id or self.integration_user_id, time.time())

    def expire_sessions(self) -> None:
        """Invalidate every current token (next call gets ``401 INVALID_SESSION_ID``)."""
        with self._lock:
            self._sessions.clear()

    def refuse_logins(
        self, error: str = "invalid_grant", description: str = "authentication failure"
    ) -> None:
        """Make ``/services/oauth2/token`` answer ``400 {"error", "error_description"}``."""
        with self._lock:
            self._refuse_logins = (error, description)

    def allow_logins(self) -> None:
        """Undo ``refuse_logins``."""
        with self._lock:
            self._refuse_logins = None

    def set_api_usage(self, used: int, limit: int | None = None) -> None:
        """Set the daily API request counter (and optionally the limit)."""
        with self._lock:
            self.api_used = used
            if limit is not None:
                self.api_limit = limit

    def exhaust_api_limit(self) -> None:
        """Use up the daily limit: data calls answer ``403 REQUEST_LIMIT_EXCEEDED``."""
        self.set_api_usage(self.api_limit)

    # ------------------------------------------------------------------ fault injection

    def fail_next_record(
        self,
        error_code: str = "UNABLE_TO_LOCK_ROW",
        message: str = "unable to obtain exclusive access to this record",
        *,
        sobject: str | None = None,
        fields: Sequence[str] = (),
        count: int = 1,
    ) -> None:
        """Make the next ``count`` record writes fail with a record error.

        Applies to single-record create/update/upsert (``400 [{"errorCode"...}]``) and to
        each record of ``composite/sobjects`` (per-record ``statusCode``).
        """
        with self._lock:
            self._record_faults.append(
                _RecordFault(sobject, RecordError(error_code, message, list(fields)), count)
            )

    def clear_faults(self) -> None:
        """Remove all pending injected faults, delays and record faults."""
        with self._lock:
            super().clear_faults()
            self._record_faults.clear()

    def _default_fault_body(self, status: int) -> list[dict[str, str]]:
        return [{"message": f"Injected failure (HTTP {status})", "errorCode": "UNKNOWN"}]

    # ------------------------------------------------------------------ schema customisation

    def add_field(
        self,
        sobject: str,
        name: str,
        type: str = "string",
        length: int = 255,
        *,
        external_id: bool = False,
        unique: bool = False,
        label: str | None = None,
        picklist_values: Sequence[str] = (),
        restricted_picklist: bool = False,
        required: bool = False,
        filterable: bool = True,
    ) -> None:
        """Add a custom field (``name`` must end in ``__c``) to ``sobject``."""
        if not name.endswith("__c"):
            raise ValueError(f"custom field names end in '__c': {name!r}")
        definition = self._sobject_def(sobject)
        if type not in _TEXT_TYPES | _NUMBER_TYPES | {"boolean", "date", "datetime"}:
            raise ValueError(f"unsupported field type {type!r}")
        with self._lock:
            definition.add(
                FieldDef(
                    name,
                    type,
                    label or name.removesuffix("__c").replace("_", " "),
                    length if type in _TEXT_TYPES else 0,
                    filterable=filterable and type != "textarea",
                    nillable=not required,
                    required=required,
                    picklist_values=[PicklistValue(value) for value in picklist_values],
                    restricted_picklist=restricted_picklist,
                    external_id=external_id,
                    unique=unique,
                    custom=True,
                )
            )

    def add_validation_rule(
        self,
        sobject: str,
        predicate: Callable[[dict[str, Any]], bool],
        message: str,
        error_field: str | None = None,
    ) -> None:
        """Add a validation rule: when ``predicate(record)`` is true the write fails.

        Like a Salesforce validation rule formula, the predicate describes the *error*
        condition.  It gets the record as it would be saved (canonical field names) and
        the failure is ``FIELD_CUSTOM_VALIDATION_EXCEPTION`` with ``message``.
        """
        self._sobject_def(sobject)
        with self._lock:
            self._validation_rules.setdefault(sobject, []).append(
                _ValidationRule(predicate, message, error_field)
            )

    def set_task_statuses(self, statuses: Sequence[TaskStatusValue]) -> None:
        """Replace the ``TaskStatus`` values (exactly one default, at least one closed)."""
        if sum(status.is_default for status in statuses) != 1:
            raise ValueError("exactly one task status must be the default")
        if not any(status.is_closed for status in statuses):
            raise ValueError("at least one task status must be closed")
        with self._lock:
            self._task_statuses = tuple(statuses)
            picklist = [
                PicklistValue(status.api_name, status.label, default=status.is_default)
                for status in statuses
            ]
            task_status = self._schema["Task"].field("Status")
            assert task_status is not None
            task_status.picklist_values = picklist
            self._reset_virtual(
                "TaskStatus",
                [
                    {
                        "MasterLabel": status.master_label or status.api_name,
                        "ApiName": status.api_name,
                        "IsClosed": status.is_closed,
                        "IsDefault": status.is_default,
                        "SortOrder": index,
                    }
                    for index, status in enumerate(statuses, start=1)
                ],
            )

    def set_task_priorities(self, priorities: Sequence[TaskPriorityValue]) -> None:
        """Replace the ``TaskPriority`` values (exactly one default)."""
        if sum(priority.is_default for priority in priorities) != 1:
            raise ValueError("exactly one task priority must be the default")
        with self._lock:
            self._task_priorities = tuple(priorities)
            task_priority = self._schema["Task"].field("Priority")
            assert task_priority is not None
            task_priority.picklist_values = [
                PicklistValue(priority.api_name, priority.label, default=priority.is_default)
                for priority in priorities
            ]
            self._reset_virtual(
                "TaskPriority",
                [
                    {
                        "MasterLabel": priority.master_label or priority.api_name,
                        "ApiName": priority.api_name,
                        "IsHighPriority": priority.is_high_priority,
                        "IsDefault": priority.is_default,
                        "SortOrder": index,
                    }
                    for index, priority in enumerate(priorities, start=1)
                ],
            )

    def _reset_virtual(self, sobject: str, rows: list[dict[str, Any]]) -> None:
        self._records[sobject].clear()
        for row in rows:
            self._store(sobject, row)

    # ------------------------------------------------------------------ seeding & state

    def add_record(self, sobject: str, **fields: Any) -> str:
        """Seed a record without API validation (system fields may be set); returns its id."""
        definition = self._sobject_def(sobject)
        values: dict[str, Any] = {}
        for key, value in fields.items():
            field_def = definition.field(key)
            if field_def is None:
                raise ValueError(f"{sobject} has no field {key!r}")
            values[field_def.name] = self._coerce_seed_value(field_def, value)
        with self._lock:
            self._apply_defaults(definition, values)
            return self._store(sobject, values)

    def add_contact(self, **fields: Any) -> str:
        """Seed a Contact (``LastName`` defaults to ``"Mustermann"``); returns its id."""
        fields.setdefault("LastName", "Mustermann")
        return self.add_record("Contact", **fields)

    def add_lead(self, **fields: Any) -> str:
        """Seed a Lead (``LastName``/``Company`` get fictional defaults); returns its id."""
        fields.setdefault("LastName", "Musterfrau")
        fields.setdefault("Company", "Beispiel GmbH")
        return self.add_record("Lead", **fields)

    def add_account(self, **fields: Any) -> str:
        """Seed an Account (``Name`` defaults to ``"Beispiel GmbH"``); returns its id."""
        fields.setdefault("Name", "Beispiel GmbH")
        return self.add_record("Account", **fields)

    def add_opportunity(self, **fields: Any) -> str:
        """Seed an Opportunity (Name/StageName/CloseDate get defaults); returns its id."""
        fields.setdefault("Name", "Beispiel-Deal")
        fields.setdefault("StageName", "Prospecting")
        fields.setdefault("CloseDate", "2030-12-31")
        return self.add_record("Opportunity", **fields)

    def add_user(self, **fields: Any) -> str:
        """Seed a User (Username/Email/LastName get fictional defaults); returns its id."""
        number = next(self._counter)
        fields.setdefault("LastName", f"Nutzer {number}")
        fields.setdefault("Username", f"user{number}@example.com")
        fields.setdefault("Email", fields["Username"])
        return self.add_record("User", **fields)

    def records(self, sobject: str) -> list[dict[str, Any]]:
        """Return copies of all records of ``sobject`` in creation order."""
        definition = self._sobject_def(sobject)
        with self._lock:
            return [copy.deepcopy(record) for record in self._records[definition.name].values()]

    def get_record(self, record_id: str) -> dict[str, Any] | None:
        """Return a copy of the record with ``record_id`` (15 or 18 chars) or ``None``."""
        with self._lock:
            found = self._find_by_id(record_id)
            return copy.deepcopy(found[1]) if found else None

    def refresh_search_index(self) -> None:
        """Make every record visible to SOSL now (ends any pending search lag)."""
        with self._lock:
            self._search_visible_at.clear()

    # ================================================================== internals: storage

    def _sobject_def(self, name: str) -> SObjectDef:
        for definition in self._schema.values():
            if definition.name.lower() == name.lower():
                return definition
        raise ValueError(f"unknown sObject {name!r}")

    def _lookup_sobject(self, name: str) -> SObjectDef | None:
        try:
            return self._sobject_def(name)
        except ValueError:
            return None

    def _new_id(self, sobject: str) -> str:
        prefix = KEY_PREFIXES[sobject]
        return to_18_char_id(f"{prefix}5g0000{_base62(next(self._counter), 6)}")

    def _timestamp(self) -> str:
        millis = int(time.time() * 1000)
        if millis <= self._last_ms:
            millis = self._last_ms + 1
        self._last_ms = millis
        moment = datetime.fromtimestamp(millis // 1000, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}+0000"

    def _find_by_id(self, record_id: str) -> tuple[str, dict[str, Any]] | None:
        if not _is_id(record_id):
            return None
        short = _id15(record_id)
        for sobject, prefix in KEY_PREFIXES.items():
            if prefix != record_id[:3] or sobject not in self._records:
                continue
            for stored_id, record in self._records[sobject].items():
                if _id15(stored_id) == short:
                    return sobject, record
        return None

    def _coerce_seed_value(self, definition: FieldDef, value: Any) -> Any:
        if isinstance(value, datetime):
            return format_datetime(value)
        if isinstance(value, date):
            return value.isoformat()
        if definition.type in _ID_TYPES and isinstance(value, str) and _is_id(value):
            return to_18_char_id(value)
        return value

    def _apply_defaults(self, definition: SObjectDef, values: dict[str, Any]) -> None:
        for field_def in definition.fields.values():
            if field_def.name in values:
                continue
            if field_def.type == "boolean" and not field_def.nillable:
                values[field_def.name] = field_def.name in ("IsActive",)
                continue
            default = next((p.value for p in field_def.picklist_values if p.default), None)
            if field_def.defaulted_on_create and default is not None:
                values[field_def.name] = default
        if definition.field("OwnerId") and "OwnerId" not in values:
            values["OwnerId"] = self._current_user_id or getattr(self, "integration_user_id", None)
        if definition.name == "Task":
            values.setdefault("TaskSubtype", "Task")

    def _store(self, sobject: str, values: dict[str, Any], *, via_api: bool = False) -> str:
        definition = self._schema[sobject]
        record_id = values.get("Id") or self._new_id(sobject)
        stamp = self._timestamp()
        user_id = self._current_user_id or getattr(self, "integration_user_id", None)
        record: dict[str, Any] = {
            name: None for name in (f.name for f in definition.fields.values())
        }
        record.update(values)
        record["Id"] = record_id
        record["IsDeleted"] = False
        record["CreatedDate"] = values.get("CreatedDate") or stamp
        record["LastModifiedDate"] = values.get("LastModifiedDate") or record["CreatedDate"]
        record["SystemModstamp"] = record["LastModifiedDate"]
        if "CreatedById" in record:
            record["CreatedById"] = values.get("CreatedById") or user_id or record_id
            record["LastModifiedById"] = values.get("LastModifiedById") or record["CreatedById"]
        if sobject == "Case" and not record.get("CaseNumber"):
            record["CaseNumber"] = f"{next(self._case_numbers):08d}"
        self._compute(sobject, record)
        self._records[sobject][record_id] = record
        if via_api and self.search_lag_seconds > 0:
            self._search_visible_at[record_id] = self._clock() + self.search_lag_seconds
        return record_id

    def _compute(self, sobject: str, record: dict[str, Any]) -> None:
        """Derive calculated/system-maintained fields."""
        if sobject in ("Contact", "Lead", "User"):
            parts = [record.get("FirstName"), record.get("LastName")]
            record["Name"] = " ".join(part for part in parts if part) or None
        if sobject == "Task":
            statuses = {status.api_name: status for status in self._task_statuses}
            priorities = {priority.api_name: priority for priority in self._task_priorities}
            status = statuses.get(record.get("Status") or "")
            priority = priorities.get(record.get("Priority") or "")
            record["IsClosed"] = bool(status and status.is_closed)
            record["IsHighPriority"] = bool(priority and priority.is_high_priority)
            record["AccountId"] = self._task_account(record)
        if sobject == "Opportunity":
            stage = record.get("StageName") or ""
            record["IsClosed"] = stage in ("Closed Won", "Closed Lost")
            record["IsWon"] = stage == "Closed Won"
        if sobject == "Case":
            record["IsClosed"] = record.get("Status") == "Closed"
        if sobject == "ContentNote":
            record["FileType"] = "SNOTE"
            content = record.get("Content")
            preview = None
            if isinstance(content, str):
                try:
                    preview = base64.b64decode(content).decode("utf-8", "replace")
                except (binascii.Error, ValueError):
                    preview = None
            record["TextPreview"] = re.sub(r"<[^>]+>", "", preview)[:255] if preview else None

    def _task_account(self, record: Mapping[str, Any]) -> str | None:
        what = record.get("WhatId")
        if what:
            found = self._find_by_id(what)
            if found and found[0] == "Account":
                return str(found[1]["Id"])
            if found and found[0] == "Opportunity":
                account: str | None = found[1].get("AccountId")
                return account
        who = record.get("WhoId")
        if who:
            found = self._find_by_id(who)
            if found and found[0] == "Contact":
                return found[1].get("AccountId")
        return None

    # ================================================================== internals: writes

    def _check_types(self, definition: SObjectDef, data: Mapping[str, Any]) -> None:
        for key, value in data.items():
            field_def = definition.field(key)
            if field_def is None or value is None:
                continue
            kind = field_def.type
            ok = True
            if kind == "boolean":
                ok = isinstance(value, bool)
            elif kind == "int":
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif kind in _NUMBER_TYPES:
                ok = isinstance(value, int | float) and not isinstance(value, bool)
            elif kind == "date":
                ok = isinstance(value, str) and bool(DATE_RE.match(value))
            elif kind == "datetime":
                ok = isinstance(value, str) and parse_datetime(value) is not None
            else:
                ok = isinstance(value, str)
            if not ok:
                raise ApiError(
                    400,
                    "JSON_PARSER_ERROR",
                    f"Cannot deserialize instance of {kind} from {json.dumps(value)} value "
                    f"for field {field_def.name}",
                )

    def _prepare_write(
        self,
        definition: SObjectDef,
        data: Mapping[str, Any],
        existing: dict[str, Any] | None,
    ) -> tuple[dict[str, Any], list[RecordError]]:
        """Validate an API write; return the record as it would be saved and its errors."""
        canonical: dict[str, Any] = {}
        for key, value in data.items():
            if key == "attributes":
                continue
            field_def = definition.field(key)
            if field_def is None:
                return {}, [
                    RecordError(
                        "INVALID_FIELD",
                        f"No such column '{key}' on sobject of type {definition.name}",
                    )
                ]
            canonical[field_def.name] = value
        self._check_types(definition, canonical)
        blocked = [
            name
            for name in canonical
            if not (
                definition.fields[name.lower()].createable
                if existing is None
                else definition.fields[name.lower()].updateable
            )
        ]
        if blocked:
            return {}, [
                RecordError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {', '.join(blocked)}. Please check the "
                    "security settings of this field and verify that it is read/write for your "
                    "profile or permission set.",
                    blocked,
                )
            ]
        record = dict(existing) if existing is not None else {}
        for name, value in canonical.items():
            field_def = definition.fields[name.lower()]
            if field_def.type in _ID_TYPES and isinstance(value, str) and _is_id(value):
                value = to_18_char_id(value)
            record[name] = value
        if existing is None:
            self._apply_defaults(definition, record)
        errors = self._validate(definition, record, canonical, existing)
        if errors:
            return record, errors
        self._compute(definition.name, record)
        for rule in self._validation_rules.get(definition.name, []):
            if rule.predicate(copy.deepcopy(record)):
                errors.append(
                    RecordError(
                        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                        rule.message,
                        [rule.error_field] if rule.error_field else [],
                    )
                )
        if errors:
            return record, errors
        for fault in self._record_faults:
            if fault.remaining > 0 and fault.sobject in (None, definition.name):
                fault.remaining -= 1
                return record, [copy.deepcopy(fault.error)]
        return record, []

    def _validate(
        self,
        definition: SObjectDef,
        record: dict[str, Any],
        written: Mapping[str, Any],
        existing: dict[str, Any] | None,
    ) -> list[RecordError]:
        errors: list[RecordError] = []
        missing = [
            f.name
            for f in definition.fields.values()
            if f.required and record.get(f.name) in (None, "")
        ]
        if missing:
            errors.append(
                RecordError(
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{', '.join(missing)}]",
                    missing,
                )
            )
        # On insert every value is validated; on update only the written ones.
        names = [f.name for f in definition.fields.values()] if existing is None else list(written)
        for name in names:
            field_def = definition.fields[name.lower()]
            value = record.get(name)
            label = field_def.label or name
            if (
                field_def.type in _TEXT_TYPES
                and isinstance(value, str)
                and field_def.length
                and len(value) > field_def.length
            ):
                shown = value if len(value) <= 1000 else value[:1000] + "..."
                errors.append(
                    RecordError(
                        "STRING_TOO_LONG",
                        f"{label}: data value too large: {shown} (max length={field_def.length})",
                        [name],
                    )
                )
                continue
            if field_def.type == "email" and value and not _EMAIL_RE.match(value):
                errors.append(
                    RecordError(
                        "INVALID_EMAIL_ADDRESS", f"{label}: invalid email address: {value}", [name]
                    )
                )
            if field_def.restricted_picklist and (
                (value is None and not field_def.nillable)
                or (
                    value is not None
                    and value not in {p.value for p in field_def.picklist_values if p.active}
                )
            ):
                errors.append(
                    RecordError(
                        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                        f"{label}: bad value for restricted picklist field: {value}",
                        [name],
                    )
                )
            if field_def.type == "reference" and value not in (None, ""):
                error = self._check_reference(field_def, value)
                if error:
                    errors.append(error)
            if field_def.unique and value not in (None, ""):
                for other in self._records[definition.name].values():
                    if existing is not None and other["Id"] == existing["Id"]:
                        continue
                    other_value = other.get(name)
                    if (
                        isinstance(other_value, str)
                        and other_value.casefold() == str(value).casefold()
                    ):
                        errors.append(
                            RecordError(
                                "DUPLICATE_VALUE",
                                f"duplicate value found: {name} duplicates value on record "
                                f"with id: {other['Id']}",
                                [],
                            )
                        )
                        break
        return errors

    def _check_reference(self, field_def: FieldDef, value: Any) -> RecordError | None:
        label = field_def.label or field_def.name
        if not _is_id(value):
            return RecordError(
                "MALFORMED_ID", f"{label}: id value of incorrect type: {value}", [field_def.name]
            )
        allowed = {KEY_PREFIXES[target] for target in field_def.reference_to}
        if value[:3] not in allowed:
            return RecordError(
                "FIELD_INTEGRITY_EXCEPTION",
                f"{label}: id value of incorrect type: {value}",
                [field_def.name],
            )
        if self._find_by_id(value) is None:
            return RecordError(
                "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [field_def.name]
            )
        return None

    def _insert_api(
        self, definition: SObjectDef, data: Mapping[str, Any]
    ) -> tuple[str | None, list[RecordError]]:
        if not definition.createable:
            raise ApiError(
                400,
                "INVALID_TYPE_FOR_OPERATION",
                f"entity type cannot be inserted: {definition.label}",
            )
        record, errors = self._prepare_write(definition, data, None)
        if errors:
            return None, errors
        record.pop("Id", None)
        return self._store(definition.name, record, via_api=True), []

    def _update_api(
        self, definition: SObjectDef, record_id: str, data: Mapping[str, Any]
    ) -> list[RecordError]:
        existing = self._records[definition.name].get(record_id)
        if existing is None:
            return [RecordError("ENTITY_IS_DELETED", "entity is deleted")]
        record, errors = self._prepare_write(definition, data, existing)
        if errors:
            return errors
        stamp = self._timestamp()
        record["LastModifiedDate"] = stamp
        record["SystemModstamp"] = stamp
        if "LastModifiedById" in record:
            record["LastModifiedById"] = self._current_user_id or record.get("LastModifiedById")
        self._records[definition.name][record_id] = record
        return []

    # ================================================================== HTTP plumbing

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        raw_path = (environ.get("RAW_URI") or environ.get("REQUEST_URI") or request.path).split(
            "?", 1
        )[0]
        path = unquote(raw_path)
        delay = 0.0
        lost = False
        version: str | None = None
        parsed_json: Any = None
        form: dict[str, str] | None = None
        injected = False
        try:
            with self._lock:
                self._current_user_id = None
                try:
                    version, response, parsed_json, form, injected = self._dispatch(
                        request, raw_path
                    )
                except ApiError as error:
                    response = self._json(error.status, error.body)
                if version is not None:
                    response.headers["Sforce-Limit-Info"] = (
                        f"api-usage={self.api_used}/{self.api_limit}"
                    )
                delay = self._take_delay(request.method, path)
                lost = self._take_loss(request.method, path)
                self._log_request(
                    SalesforceRequest(
                        method=request.method,
                        path=path,
                        query={key: request.args.getlist(key) for key in request.args},
                        json=parsed_json,
                        status=response.status_code,
                        time=time.time(),
                        kind=_kind(path, version),
                        injected=injected,
                        delayed_seconds=delay,
                        lost=lost,
                        api_version=version,
                        form=form,
                    )
                )
                self._current_user_id = None
        except Exception as exc:  # pragma: no cover - surfaced to the test as a 500
            response = self._json(
                500, [{"errorCode": "UNKNOWN_EXCEPTION", "message": f"test server bug: {exc!r}"}]
            )
        self._hold(delay)
        if lost:
            return self._lose_answer(environ, start_response)
        return response(environ, start_response)

    @staticmethod
    def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
        if status == 204:
            response = Response(status=204)
        else:
            response = Response(
                json.dumps(body), status=status, content_type="application/json;charset=UTF-8"
            )
        for key, value in (headers or {}).items():
            response.headers[key] = value
        return response

    def _dispatch(
        self, request: Request, raw_path: str
    ) -> tuple[str | None, Response, Any, dict[str, str] | None, bool]:
        """(API version, answer, decoded JSON body, logged form, injected) of one request."""
        path = unquote(raw_path)
        if path.rstrip("/") == "/services/oauth2/token":
            form = {key: request.form[key] for key in request.form}
            fault = self._take_fault(request.method, path)
            if fault is not None:
                return None, self._fault_response(fault), None, form, True
            redacted = {
                key: ("***" if key in ("client_secret", "password") else value)
                for key, value in form.items()
            }
            return None, self._oauth_token(request, form), None, redacted, False
        if path.rstrip("/") == "/services/data":
            versions = [
                {"label": label, "url": f"/services/data/v{number}", "version": number}
                for label, number in (
                    ("Winter '24", "59.0"),
                    ("Spring '24", "60.0"),
                    ("Summer '24", "61.0"),
                    ("Winter '25", "62.0"),
                )
            ]
            return None, self._json(200, versions), None, None, False
        match = re.match(r"^/services/data/v(\d+\.\d+)(/.*)?$", raw_path)
        if not match:
            return (
                None,
                self._json(404, [{"errorCode": "NOT_FOUND", "message": _NOT_FOUND}]),
                None,
                None,
                False,
            )
        version = match.group(1)
        self.api_versions_used.add(version)
        segments = [unquote(part) for part in (match.group(2) or "").strip("/").split("/") if part]
        body: Any = None
        raw_body = request.get_data(as_text=True)
        if raw_body:
            try:
                body = json.loads(raw_body)
            except ValueError as error:
                fault = self._take_fault(request.method, path)
                if fault is not None:
                    return version, self._fault_response(fault), None, None, True
                raise ApiError(400, "JSON_PARSER_ERROR", f"Unexpected character: {error}") from None
        fault = self._take_fault(request.method, path)
        if fault is not None:
            return version, self._fault_response(fault), body, None, True
        self._authenticate(request)
        if self.api_used >= self.api_limit:
            raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        self.api_used += 1
        return version, self._route(request, version, segments, body), body, None, False

    def _fault_response(self, fault: Fault) -> Response:
        if isinstance(fault.body, str):
            response = Response(fault.body, status=fault.status, content_type="text/html")
            for key, value in fault.headers.items():
                response.headers[key] = value
            return response
        return self._json(fault.status, fault.body, fault.headers)

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        session = (
            self._sessions.get(token.strip()) if scheme.lower() in ("bearer", "oauth") else None
        )
        if session is None:
            raise ApiError(401, "INVALID_SESSION_ID", _SESSION_INVALID)
        self._current_user_id = session.user_id

    def _route(self, request: Request, version: str, segments: list[str], body: Any) -> Response:
        method = request.method
        if not segments:
            resources = {
                name: f"/services/data/v{version}/{name}"
                for name in ("sobjects", "query", "queryAll", "search", "limits", "composite")
            }
            return self._json(200, resources)
        head = segments[0]
        if head == "limits" and len(segments) == 1:
            self._require_method(method, "GET")
            return self._json(200, self._limits())
        if head in ("query", "queryAll"):
            self._require_method(method, "GET")
            if len(segments) == 2:
                return self._json(200, self._query_more(segments[1], version))
            query = request.args.get("q")
            if not query:
                raise malformed_query("A query string has to be specified")
            return self._json(200, self._query(query, version))
        if head == "search" and len(segments) == 1:
            self._require_method(method, "GET")
            query = request.args.get("q")
            if not query:
                raise ApiError(400, "MALFORMED_SEARCH", "A search string has to be specified")
            return self._json(200, self._search(query, version))
        if head == "sobjects":
            return self._route_sobjects(method, version, segments[1:], body, request)
        if head == "composite" and segments[1:] == ["sobjects"]:
            if method == "POST":
                return self._json(200, self._collection_create(body))
            if method == "PATCH":
                return self._json(200, self._collection_update(body))
            self._require_method(method, "POST", "PATCH")
        if head == "composite":
            return self._json(
                501,
                [
                    {
                        "errorCode": "NOT_IMPLEMENTED",
                        "message": f"{UNSUPPORTED} /{'/'.join(segments)}",
                    }
                ],
            )
        raise ApiError(404, "NOT_FOUND", _NOT_FOUND)

    @staticmethod
    def _require_method(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise ApiError(
                405,
                "METHOD_NOT_ALLOWED",
                f"HTTP Method '{method}' not allowed. Allowed are {','.join(allowed)}",
            )

    def _limits(self) -> dict[str, Any]:
        return {
            "DailyApiRequests": {
                "Max": self.api_limit,
                "Remaining": self.api_limit - self.api_used,
            },
            "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "DataStorageMB": {"Max": 5, "Remaining": 5},
            "FileStorageMB": {"Max": 20, "Remaining": 20},
        }

    # ------------------------------------------------------------------ OAuth

    def _oauth_error(self, error: str, description: str, status: int = 400) -> Response:
        return self._json(status, {"error": error, "error_description": description})

    def _oauth_token(self, request: Request, form: Mapping[str, str]) -> Response:
        if request.method != "POST":
            return self._oauth_error("invalid_request", "must use HTTP POST")
        if self._refuse_logins is not None:
            return self._oauth_error(*self._refuse_logins)
        grant_type = form.get("grant_type")
        if grant_type == "client_credentials":
            client_id, client_secret = form.get("client_id"), form.get("client_secret")
            authorization = request.headers.get("Authorization", "")
            if authorization.lower().startswith("basic "):
                try:
                    decoded = base64.b64decode(authorization[6:]).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError):
                    decoded = ":"
                client_id, _, client_secret = decoded.partition(":")
            if client_id != self.consumer_key or client_secret != self.consumer_secret:
                return self._oauth_error("invalid_client", "invalid client credentials")
            user_id = self.integration_user_id
        elif grant_type == JWT_BEARER_GRANT:
            result = self._validate_jwt(form.get("assertion") or "")
            if isinstance(result, Response):
                return result
            user_id = result
        else:
            return self._oauth_error("unsupported_grant_type", "grant type not supported")
        token = self.issue_token(user_id)
        issued_at = str(int(time.time() * 1000))
        signature = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
        return self._json(
            200,
            {
                "access_token": token,
                "signature": signature,
                "scope": "api",
                "instance_url": self.instance_url,
                "id": f"{self.instance_url}/id/{self.org_id}/{user_id}",
                "token_type": "Bearer",
                "issued_at": issued_at,
            },
        )

    def _validate_jwt(self, assertion: str) -> str | Response:
        """Check a JWT bearer assertion; return the user id or an OAuth error response."""
        parts = assertion.split(".")
        try:
            if len(parts) != 3:
                raise ValueError("not three parts")
            header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
            claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
            if not isinstance(header, dict) or not isinstance(claims, dict):
                raise ValueError("not JSON objects")
        except (ValueError, binascii.Error):
            return self._oauth_error("invalid_grant", "invalid assertion")
        if header.get("alg") != "RS256":
            return self._oauth_error("invalid_grant", "invalid assertion")
        if claims.get("iss") != self.consumer_key:
            return self._oauth_error("invalid_client_id", "client identifier invalid")
        audience = claims.get("aud")
        audiences = {audience} if isinstance(audience, str) else set(audience or [])
        if not audiences & self.jwt_audiences:
            return self._oauth_error("invalid_grant", "audience is invalid")
        try:
            # simple-salesforce sends "exp" as a *string* of digits; accept both forms.
            expires = float(claims.get("exp"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return self._oauth_error("invalid_grant", "invalid assertion")
        if expires < time.time():
            return self._oauth_error("invalid_grant", "expired assertion")
        if self.jwt_public_key is not None:
            try:
                jwt.decode(
                    assertion,
                    self.jwt_public_key,
                    algorithms=["RS256"],
                    options={"verify_exp": False, "verify_aud": False, "verify_iat": False},
                )
            except jwt.InvalidTokenError:
                return self._oauth_error("invalid_grant", "invalid assertion")
        subject = str(claims.get("sub") or "").casefold()
        for user in self._records["User"].values():
            if (user.get("Username") or "").casefold() == subject and user.get("IsActive"):
                return str(user["Id"])
        return self._oauth_error("invalid_grant", "user hasn't approved this consumer")

    # ------------------------------------------------------------------ sObject resources

    def _route_sobjects(
        self, method: str, version: str, segments: list[str], body: Any, request: Request
    ) -> Response:
        if not segments:
            self._require_method(method, "GET")
            return self._json(
                200,
                {
                    "encoding": "UTF-8",
                    "maxBatchSize": 200,
                    "sobjects": [d.summary(version) for d in self._schema.values()],
                },
            )
        definition = self._lookup_sobject(segments[0])
        if definition is None:
            raise ApiError(404, "NOT_FOUND", _NOT_FOUND)
        if len(segments) == 1:
            if method == "POST":
                return self._create_one(definition, body)
            self._require_method(method, "GET", "POST")
            return self._json(
                200, {"objectDescribe": definition.summary(version), "recentItems": []}
            )
        if len(segments) == 2 and segments[1] == "describe":
            self._require_method(method, "GET")
            return self._json(200, definition.describe(version))
        if len(segments) == 2:
            return self._record_resource(method, version, definition, segments[1], body, request)
        if len(segments) == 3:
            return self._external_id_resource(
                method, version, definition, segments[1], segments[2], body, request
            )
        raise ApiError(404, "NOT_FOUND", _NOT_FOUND)

    def _create_one(self, definition: SObjectDef, body: Any) -> Response:
        if not isinstance(body, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        record_id, errors = self._insert_api(definition, body)
        if errors:
            return self._json(400, [error.rest() for error in errors])
        return self._json(201, {"id": record_id, "success": True, "errors": []})

    def _render(
        self, version: str, definition: SObjectDef, record: Mapping[str, Any], fields: str | None
    ) -> dict[str, Any]:
        names = (
            [name.strip() for name in fields.split(",") if name.strip()]
            if fields
            else [f.name for f in definition.fields.values()]
        )
        result: dict[str, Any] = {"attributes": self._attributes(version, definition.name, record)}
        for name in names:
            field_def = definition.field(name)
            if field_def is None:
                raise ApiError(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{name}' on entity '{definition.name}'. If you are "
                    "attempting to use a custom field, be sure to append the '__c' after the "
                    "custom field name. Please reference your WSDL or the describe call for the "
                    "appropriate names.",
                )
            result[field_def.name] = copy.deepcopy(record.get(field_def.name))
        return result

    @staticmethod
    def _attributes(version: str, sobject: str, record: Mapping[str, Any]) -> dict[str, str]:
        return {
            "type": sobject,
            "url": f"/services/data/v{version}/sobjects/{sobject}/{record['Id']}",
        }

    def _record_resource(
        self,
        method: str,
        version: str,
        definition: SObjectDef,
        record_id: str,
        body: Any,
        request: Request,
    ) -> Response:
        found = self._find_by_id(record_id)
        if found is None or found[0] != definition.name:
            raise ApiError(404, "NOT_FOUND", _NOT_FOUND)
        record = found[1]
        if method == "GET":
            return self._json(
                200, self._render(version, definition, record, request.args.get("fields"))
            )
        if method == "PATCH":
            if not isinstance(body, dict):
                raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
            if not definition.updateable:
                raise ApiError(400, "INVALID_TYPE_FOR_OPERATION", "entity type cannot be updated")
            errors = self._update_api(definition, record["Id"], body)
            if errors:
                return self._json(400, [error.rest() for error in errors])
            return self._json(204, None)
        if method == "DELETE":
            if not definition.deletable:
                raise ApiError(400, "INVALID_TYPE_FOR_OPERATION", "entity type cannot be deleted")
            self._deleted[record["Id"]] = self._records[definition.name].pop(record["Id"])
            return self._json(204, None)
        self._require_method(method, "GET", "PATCH", "DELETE")
        raise AssertionError("unreachable")

    def _external_id_resource(
        self,
        method: str,
        version: str,
        definition: SObjectDef,
        field_name: str,
        value: str,
        body: Any,
        request: Request,
    ) -> Response:
        field_def = definition.field(field_name)
        if field_def is None or not (field_def.external_id or field_def.type == "id"):
            raise ApiError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {field_name}",
            )
        if field_def.type == "id":
            matches = [
                record
                for record in self._records[definition.name].values()
                if _is_id(value) and _id15(record["Id"]) == _id15(value)
            ]
        else:
            matches = [
                record
                for record in self._records[definition.name].values()
                if isinstance(record.get(field_def.name), str)
                and record[field_def.name].casefold() == value.casefold()
            ]
        if len(matches) > 1:
            return self._json(
                300,
                [
                    f"/services/data/v{version}/sobjects/{definition.name}/{record['Id']}"
                    for record in matches
                ],
            )
        if method == "GET":
            if not matches:
                raise ApiError(404, "NOT_FOUND", _NOT_FOUND)
            return self._json(
                200, self._render(version, definition, matches[0], request.args.get("fields"))
            )
        if method == "PATCH":
            if not isinstance(body, dict):
                raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
            if matches:
                errors = self._update_api(definition, matches[0]["Id"], body)
                if errors:
                    return self._json(400, [error.rest() for error in errors])
                return self._json(
                    200, {"id": matches[0]["Id"], "success": True, "errors": [], "created": False}
                )
            data = dict(body)
            if field_def.type != "id":
                data[field_def.name] = value
            record_id, errors = self._insert_api(definition, data)
            if errors:
                return self._json(400, [error.rest() for error in errors])
            return self._json(
                201, {"id": record_id, "success": True, "errors": [], "created": True}
            )
        self._require_method(method, "GET", "PATCH")
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ sObject Collections

    def _collection_records(self, body: Any) -> tuple[list[Any], bool]:
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise ApiError(400, "JSON_PARSER_ERROR", "The request body must contain 'records'")
        records = body["records"]
        if len(records) > 200:
            raise ApiError(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            )
        return records, bool(body.get("allOrNone", False))

    def _collection_type(self, item: Any) -> SObjectDef:
        attributes = item.get("attributes") if isinstance(item, dict) else None
        type_name = attributes.get("type") if isinstance(attributes, dict) else None
        if not type_name:
            raise ApiError(400, "INVALID_TYPE", "No SObject Type defined in JSON")
        definition = self._lookup_sobject(type_name)
        if definition is None:
            raise ApiError(400, "INVALID_TYPE", f"sObject type '{type_name}' is not supported.")
        return definition

    @staticmethod
    def _rolled_back() -> RecordError:
        return RecordError(
            "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "Record rolled back because not all records were valid and the request was using "
            "AllOrNone header",
        )

    def _collection_create(self, body: Any) -> list[dict[str, Any]]:
        """POST composite/sobjects: always 200 with one SaveResult per record."""
        records, all_or_none = self._collection_records(body)
        definitions = [self._collection_type(item) for item in records]
        snapshot = self._snapshot() if all_or_none else None
        results: list[dict[str, Any]] = []
        failed = False
        for definition, item in zip(definitions, records, strict=True):
            if any(key.lower() == "id" for key in item):
                errors = [RecordError("INVALID_FIELD", "cannot specify Id in an insert call")]
                record_id = None
            else:
                record_id, errors = self._insert_api(definition, item)
            if errors:
                failed = True
                results.append({"success": False, "errors": [e.collection() for e in errors]})
            else:
                results.append({"id": record_id, "success": True, "errors": []})
        if all_or_none and failed and snapshot is not None:
            self._restore(snapshot)
            results = [
                result
                if not result["success"]
                else {"success": False, "errors": [self._rolled_back().collection()]}
                for result in results
            ]
        return results

    def _collection_update(self, body: Any) -> list[dict[str, Any]]:
        """PATCH composite/sobjects: update records given with ``id``."""
        records, all_or_none = self._collection_records(body)
        definitions = [self._collection_type(item) for item in records]
        snapshot = self._snapshot() if all_or_none else None
        results: list[dict[str, Any]] = []
        failed = False
        for definition, item in zip(definitions, records, strict=True):
            record_id = next((item[key] for key in item if key.lower() == "id"), None)
            data = {key: value for key, value in item.items() if key.lower() != "id"}
            found = self._find_by_id(record_id) if isinstance(record_id, str) else None
            if found is None or found[0] != definition.name:
                errors = [self._missing_record_error(definition, record_id)]
            else:
                record_id = found[1]["Id"]
                errors = self._update_api(definition, found[1]["Id"], data)
            if errors:
                failed = True
                results.append(
                    {"id": record_id, "success": False, "errors": [e.collection() for e in errors]}
                )
            else:
                results.append({"id": record_id, "success": True, "errors": []})
        if all_or_none and failed and snapshot is not None:
            self._restore(snapshot)
            results = [
                result
                if not result["success"]
                else {
                    "id": result["id"],
                    "success": False,
                    "errors": [self._rolled_back().collection()],
                }
                for result in results
            ]
        return results

    def _missing_record_error(self, definition: SObjectDef, record_id: Any) -> RecordError:
        if not _is_id(record_id) or record_id[:3] != definition.key_prefix:
            return RecordError(
                "MALFORMED_ID", f"Record ID: id value of incorrect type: {record_id}"
            )
        if any(_id15(deleted) == _id15(record_id) for deleted in self._deleted):
            return RecordError("ENTITY_IS_DELETED", "entity is deleted")
        return RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")

    def _snapshot(self) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, float]]:
        return copy.deepcopy(self._records), dict(self._search_visible_at)

    def _restore(
        self, snapshot: tuple[dict[str, dict[str, dict[str, Any]]], dict[str, float]]
    ) -> None:
        # Injected record faults consumed by rolled-back records stay consumed.
        self._records, self._search_visible_at = snapshot

    # ================================================================== SOQL execution

    def _resolve_path(self, definition: SObjectDef, path: str) -> tuple[list[FieldDef], FieldDef]:
        """Validate a (possibly dotted) field path; return (relationship chain, leaf)."""
        parts = path.split(".")
        chain: list[FieldDef] = []
        current: list[SObjectDef] = [definition]
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if last:
                for candidate in current:
                    leaf = candidate.field(part)
                    if leaf is not None:
                        return chain, leaf
                break
            relationship = None
            for candidate in current:
                relationship = candidate.relationship(part)
                if relationship is not None:
                    break
            if relationship is None:
                break
            chain.append(relationship)
            targets = [
                self._lookup_sobject("ContentNote" if t == "ContentDocument" else t)
                for t in relationship.reference_to
            ]
            current = [t for t in targets if t is not None]
        raise ApiError(
            400,
            "INVALID_FIELD",
            f"No such column '{path}' on entity '{definition.name}'. If you are attempting to "
            "use a custom field, be sure to append the '__c' after the custom field name. Please "
            "reference your WSDL or the describe call for the appropriate names.",
        )

    def _value_at(self, definition: SObjectDef, record: Mapping[str, Any], path: str) -> Any:
        parts = path.split(".")
        current: Mapping[str, Any] = record
        for part in parts[:-1]:
            relationship = definition.relationship(part)
            if relationship is None:
                return None
            target_id = current.get(relationship.name)
            found = self._find_by_id(target_id) if isinstance(target_id, str) else None
            if found is None:
                return None
            definition, current = self._schema[found[0]], found[1]
        leaf = definition.field(parts[-1])
        return current.get(leaf.name) if leaf else None

    def _project(
        self, version: str, definition: SObjectDef, record: Mapping[str, Any], paths: list[str]
    ) -> dict[str, Any]:
        result: dict[str, Any] = {"attributes": self._attributes(version, definition.name, record)}
        for path in paths:
            chain, leaf = self._resolve_path(definition, path)
            if not chain:
                result[leaf.name] = copy.deepcopy(record.get(leaf.name))
                continue
            # Nest relationship values like Salesforce: {"Account": {"attributes":..,"Name":..}}
            container = result
            current: Mapping[str, Any] = record
            current_type = definition.name
            complete = True
            for relationship in chain:
                key = relationship.relationship_name or relationship.name
                target_id = current.get(relationship.name)
                found = self._find_by_id(target_id) if isinstance(target_id, str) else None
                if found is None:
                    container.setdefault(key, None)
                    complete = False
                    break
                nested = container.get(key)
                if not isinstance(nested, dict):
                    nested = {"attributes": self._attributes(version, found[0], found[1])}
                    container[key] = nested
                container, current, current_type = nested, found[1], found[0]
            if complete:
                target_leaf = self._schema[current_type].field(leaf.name)
                container[leaf.name] = (
                    copy.deepcopy(current.get(target_leaf.name)) if target_leaf else None
                )
        return result

    def _check_where(self, definition: SObjectDef, node: Any) -> None:
        if isinstance(node, BoolOp):
            for item in node.items:
                self._check_where(definition, item)
            return
        if isinstance(node, Not):
            self._check_where(definition, node.item)
            return
        _, leaf = self._resolve_path(definition, node.path)
        if not leaf.filterable:
            raise ApiError(
                400,
                "INVALID_FIELD",
                f"field '{leaf.name}' can not be filtered in a query call",
            )
        for literal in node.values:
            self._check_literal(leaf, literal, node.op)

    @staticmethod
    def _check_literal(leaf: FieldDef, literal: SoqlLiteral, op: str) -> None:
        if literal.kind == "null":
            if op not in ("=", "!=", "IN", "NOTIN"):
                raise malformed_query(f"invalid operator {op} for null on {leaf.name}")
            return
        expected = leaf.type
        problem = None
        if expected == "boolean" and literal.kind != "bool":
            problem = "must be of type boolean and should not be enclosed in quotes"
        elif expected in _NUMBER_TYPES and literal.kind != "number":
            problem = f"must be of type {'double' if expected != 'int' else 'integer'} and "
            problem += "should not be enclosed in quotes"
        elif expected == "date" and literal.kind != "date":
            problem = "must be of type date and should not be enclosed in quotes"
        elif expected == "datetime" and literal.kind != "datetime":
            problem = "must be of type dateTime and should not be enclosed in quotes"
        elif (expected in _TEXT_TYPES or expected in _ID_TYPES) and literal.kind != "string":
            problem = "must be of type string and should be enclosed in quotes"
        if problem:
            raise ApiError(
                400, "INVALID_FIELD", f"value of filter criterion for field '{leaf.name}' {problem}"
            )
        if expected in _ID_TYPES and op in ("=", "!=", "IN", "NOTIN") and not _is_id(literal.value):
            raise ApiError(
                400, "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {literal.value}"
            )
        if op == "LIKE" and expected not in _TEXT_TYPES:
            raise ApiError(
                400,
                "INVALID_QUERY_FILTER_OPERATOR",
                f"invalid operator on {leaf.type} field: LIKE ({leaf.name})",
            )

    def _matches(self, definition: SObjectDef, record: Mapping[str, Any], node: Any) -> bool:
        if isinstance(node, BoolOp):
            results = (self._matches(definition, record, item) for item in node.items)
            return all(results) if node.op == "AND" else any(results)
        if isinstance(node, Not):
            return not self._matches(definition, record, node.item)
        _, leaf = self._resolve_path(definition, node.path)
        actual = self._value_at(definition, record, node.path)
        if node.op == "IN":
            return any(self._compare(leaf, actual, "=", value) for value in node.values)
        if node.op == "NOTIN":
            return not any(self._compare(leaf, actual, "=", value) for value in node.values)
        return self._compare(leaf, actual, node.op, node.values[0])

    @staticmethod
    def _normalise(leaf: FieldDef, value: Any) -> Any:
        if value is None:
            return None
        if leaf.type in _ID_TYPES:
            return _id15(str(value))
        if leaf.type in _TEXT_TYPES:
            return str(value).casefold()
        if leaf.type in ("date", "datetime"):
            return parse_datetime(value) if isinstance(value, str) else value
        if leaf.type in _NUMBER_TYPES:
            return float(value)
        return value

    def _compare(self, leaf: FieldDef, actual: Any, op: str, literal: SoqlLiteral) -> bool:
        if literal.kind == "null":
            return (actual is None) == (op == "=")
        if actual is None:
            return op == "!="
        if op == "LIKE":
            return like_to_regex(str(literal.value)).fullmatch(str(actual)) is not None
        left = self._normalise(leaf, actual)
        right = self._normalise(leaf, literal.value)
        if leaf.type == "date" and isinstance(right, datetime):
            right = right.replace(hour=0, minute=0, second=0, microsecond=0)
        try:
            if op == "=":
                return bool(left == right)
            if op == "!=":
                return bool(left != right)
            if op == "<":
                return bool(left < right)
            if op == "<=":
                return bool(left <= right)
            if op == ">":
                return bool(left > right)
            if op == ">=":
                return bool(left >= right)
        except TypeError:
            return False
        raise malformed_query(f"unknown operator {op}")

    def _sort(
        self, definition: SObjectDef, rows: list[dict[str, Any]], order: list[OrderItem]
    ) -> list[dict[str, Any]]:
        for item in reversed(order):
            _, leaf = self._resolve_path(definition, item.path)
            nulls_first = item.nulls_first if item.nulls_first is not None else not item.descending
            path = item.path
            present = [row for row in rows if self._value_at(definition, row, path) is not None]
            missing = [row for row in rows if self._value_at(definition, row, path) is None]

            def sort_key(row: dict[str, Any], path: str = path, leaf: FieldDef = leaf) -> Any:
                return self._normalise(leaf, self._value_at(definition, row, path))

            present.sort(key=sort_key, reverse=item.descending)
            rows = missing + present if nulls_first else present + missing
        return rows

    def _run_soql(
        self, soql: SoqlQuery, candidates: Iterable[dict[str, Any]] | None = None
    ) -> tuple[SObjectDef, list[dict[str, Any]]]:
        definition = self._lookup_sobject(soql.sobject)
        if definition is None or not definition.queryable:
            raise ApiError(
                400,
                "INVALID_TYPE",
                f"sObject type '{soql.sobject}' is not supported. If you are attempting to use a "
                "custom object, be sure to append the '__c' after the entity name. Please "
                "reference your WSDL or the describe call for the appropriate names.",
            )
        for path in soql.fields:
            self._resolve_path(definition, path)
        for item in soql.order:
            self._resolve_path(definition, item.path)
        if soql.where is not None:
            self._check_where(definition, soql.where)
        pool = (
            list(self._records[definition.name].values())
            if candidates is None
            else list(candidates)
        )
        rows = [
            row for row in pool if soql.where is None or self._matches(definition, row, soql.where)
        ]
        rows = self._sort(definition, rows, soql.order)
        rows = rows[soql.offset :]
        if soql.limit is not None:
            rows = rows[: soql.limit]
        return definition, rows

    def _query(self, text: str, version: str) -> dict[str, Any]:
        soql = SoqlParser(text).parse()
        definition, rows = self._run_soql(soql)
        # Deduplicate selected fields case-insensitively, keep order.
        paths = list(dict.fromkeys(soql.fields))
        projected = [self._project(version, definition, row, paths) for row in rows]
        return self._page(projected, version)

    def _page(self, projected: list[dict[str, Any]], version: str) -> dict[str, Any]:
        total = len(projected)
        batch = projected[: self.query_batch_size]
        result: dict[str, Any] = {"totalSize": total, "done": len(batch) == total, "records": batch}
        if len(batch) < total:
            cursor = f"01g5g00000{_base62(next(self._counter), 5)}"
            self._cursors[cursor] = (projected, total)
            result["nextRecordsUrl"] = f"/services/data/v{version}/query/{cursor}-{len(batch)}"
        return result

    def _query_more(self, locator: str, version: str) -> dict[str, Any]:
        cursor, _, offset_text = locator.partition("-")
        if cursor not in self._cursors or not offset_text.isdigit():
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        projected, total = self._cursors[cursor]
        offset = int(offset_text)
        batch = projected[offset : offset + self.query_batch_size]
        end = offset + len(batch)
        result: dict[str, Any] = {"totalSize": total, "done": end >= total, "records": batch}
        if end < total:
            result["nextRecordsUrl"] = f"/services/data/v{version}/query/{cursor}-{end}"
        return result

    # ================================================================== SOSL execution

    def _search_fields(self, definition: SObjectDef, scope: str) -> list[FieldDef]:
        fields = list(definition.fields.values())
        if scope == "PHONE":
            return [f for f in fields if f.type == "phone"]
        if scope == "EMAIL":
            return [f for f in fields if f.type == "email"]
        if scope in ("NAME", "SIDEBAR"):
            names = {"name", "firstname", "lastname", "company", "subject", "title"}
            return [f for f in fields if f.name.lower() in names]
        return [f for f in fields if f.type in _TEXT_TYPES - {"picklist", "multipicklist"}]

    def _phone_digits_match(self, wanted: str, stored: str) -> bool:
        """Approximate Salesforce phone search on digits only.

        ``exact``: digits of the term equal the digits of the stored value.
        ``suffix`` (default): leading zeros (trunk/international prefixes) are dropped on
        both sides, then the numbers match if equal or one ends with the other and the
        shorter one has at least 7 digits -- so ``+49 (211) 63553400`` finds
        ``0211 63553400`` and ``63553400`` finds ``+49 211 63553400``.  A trailing ``*``
        in the term means "starts with".
        """
        prefix = wanted.rstrip().endswith("*")
        wanted_digits = re.sub(r"\D", "", wanted)
        stored_digits = re.sub(r"\D", "", stored)
        if not wanted_digits or not stored_digits:
            return False
        if self.phone_match == "exact":
            return (
                stored_digits.startswith(wanted_digits)
                if prefix
                else stored_digits == wanted_digits
            )
        wanted_digits = wanted_digits.lstrip("0")
        stored_digits = stored_digits.lstrip("0")
        if prefix:
            return stored_digits.startswith(wanted_digits)
        if wanted_digits == stored_digits:
            return True
        shorter = min(len(wanted_digits), len(stored_digits))
        return shorter >= 7 and (
            wanted_digits.endswith(stored_digits) or stored_digits.endswith(wanted_digits)
        )

    def _search_matches(
        self, sosl: SoslQuery, definition: SObjectDef, record: Mapping[str, Any]
    ) -> bool:
        fields = self._search_fields(definition, sosl.scope)
        values = [record.get(f.name) for f in fields]
        texts = [value for value in values if isinstance(value, str) and value]
        if not texts:
            return False
        if sosl.scope == "PHONE":
            return any(
                self._phone_digits_match(alternative, text)
                for alternative in phone_alternatives(sosl.expression)
                for text in texts
            )
        return text_expression_matches(sosl.expression, texts)

    def _search(self, text: str, version: str) -> dict[str, Any]:
        sosl = parse_sosl(text)
        specs = sosl.returning or [
            ReturningSpec(definition.name, None)
            for definition in self._schema.values()
            if definition.searchable
        ]
        now = self._clock()
        results: list[dict[str, Any]] = []
        for spec in specs:
            definition = self._lookup_sobject(spec.sobject)
            if definition is None or not definition.searchable:
                raise ApiError(
                    400, "INVALID_TYPE", f"sObject type '{spec.sobject}' is not supported."
                )
            candidates = [
                record
                for record in self._records[definition.name].values()
                if self._search_visible_at.get(record["Id"], 0.0) <= now
                and self._search_matches(sosl, definition, record)
            ]
            inner = spec.inner.strip() if spec.inner else ""
            if inner:
                soql = returning_query(definition.name, inner)
            else:
                soql = SoqlQuery(["Id"], definition.name, None, [], None, 0)
            _, rows = self._run_soql(soql, candidates)
            results.extend(
                self._project(version, definition, row, list(dict.fromkeys(soql.fields)))
                for row in rows
            )
        if sosl.limit is not None:
            results = results[: sosl.limit]
        return {"searchRecords": results[:2000]}
