"""The ``salesforce`` target: each call as a closed call Task on the matched Salesforce record.

Per delivery the adapter writes, through ``simple-salesforce`` 1.12 on the REST API:

1. one ``POST composite/sobjects`` (sObject Collections, ``allOrNone: false``, one API call) with
   the call Task (``TaskSubtype``/``Type`` ``Call``, ``CallType``, ``CallDurationInSeconds``,
   ``CallObject`` = sipgate call id, ``ActivityDate`` = local date of the call, the org's closed
   ``Status``, ``WhoId``/``WhatId``/``OwnerId`` and the rendered mapping fields), one open Task per
   action item (the org's default open ``Status``, ``Priority`` mapped from low/normal/high),
   an Enhanced Note (``ContentNote``) with the text that did not fit (``job.overflow``) and a
   ``Case`` when the call came in on one of ``case.channels``;
2. only when a note was created: a second ``POST composite/sobjects`` with the
   ``ContentDocumentLink`` that attaches the note to the WhoId (the link needs the note's id,
   and the project's test server has no ``/composite`` with reference ids).

Request budget: a matched call with action items and no overflow costs two API requests, the
SOSL search (`search_by_phone`) and the composite write. The org's ``TaskStatus`` and
``TaskPriority`` values are read once per adapter instance (two queries on its first write).
``what_rule: open_opportunity`` costs one more query per call (the most recently modified open
Opportunity of the account); overflow costs the link request. With ``external_id_field`` the
Tasks are upserted instead (``PATCH composite/sobjects/Task/<field>``, one API call; notes and
cases then need a separate ``POST``).

Search: `search_by_phone` sends ONE SOSL request over every spelling of the number
(`PhoneNumber.variants`, each quoted and escaped with `escape_sosl`). Salesforce's search index
lags behind writes (15 minutes and more); with ``match_field`` (an indexed custom field holding
+E.164, e.g. ``Phone_E164__c``) an exact SOQL match is used instead: one ``query`` request for one
object type, one ``/composite`` request with one query subrequest per type for several (one API
call; ``/composite`` takes up to 5 queries but no SOSL).

Idempotency: every created id is recorded in the delivery's `Journal` at once, and a retry
creates only what is not recorded. Before a composite create is sent, ``task_pending`` is
recorded; when its outcome stays unknown (timeout, dropped connection, 5xx) the retry first looks
up what the lost answer would have told: Tasks by ``CallObject`` (the call Task carries the
sipgate call id, follow-up N carries ``<call id>#N``, ``CallObject`` is filterable), the note by
its title (which ends in the call id) and a case by subject, contact/number and creation time.

Leads for unknown callers (`create_record`): ``Phone`` = international format, ``LastName``/
``Company`` from ``lead_defaults``. The shared `Memo` remembers "this number (hashed E.164) got
lead X" for a day and "a delivery is creating it" (a claim taken over with compare-and-set when
its worker died), so a repeat caller gets the same lead while SOSL cannot see it yet; a retry
whose create had an unknown outcome looks the lead up by ``Phone`` with SOQL first.

Authentication: simple-salesforce never holds credentials (its own re-login on
``INVALID_SESSION_ID`` recurses without bound through ``SFType`` calls). The adapter logs in itself
(OAuth client credentials or JWT bearer with ``requests``/PyJWT, or simple-salesforce's
``SalesforceLogin`` for the retiring SOAP username/password login), hands the token to
``Salesforce(session_id=...)``, and on ``INVALID_SESSION_ID`` logs in again once and repeats the
request once; a second refusal is a `RetryableError`, a refused login (``invalid_client``,
``invalid_grant``, …) a `PermanentError`.

Faults: every request goes through a `requests.Session` whose HTTP adapter has a default
``(connect_timeout, read_timeout)``. ``REQUEST_LIMIT_EXCEEDED`` for the daily request allocation
parks the target for `REQUEST_LIMIT_PARK` (one hour): Salesforce counts requests over a rolling
24-hour window ("calls are blocked until usage for the preceding 24 hours drops below the
limit"), so there is no reset time to wait for, and capacity comes back as old requests age
out. ``REQUEST_LIMIT_EXCEEDED`` for concurrent long-running requests is a short `RetryableError`.
``UNABLE_TO_LOCK_ROW``, 5xx, timeouts and connection errors are retryable; validation, permission
and other 4xx errors are permanent and carry Salesforce's error code and message, with values
Salesforce echoes (field contents, query text), phone numbers and e-mail addresses removed.
"""

from __future__ import annotations

import base64
import hashlib
import html
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Self, TypeVar
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import jwt
import requests
from marshmallow import ValidationError, fields, post_load, validate
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
)
from simple_salesforce.login import SalesforceLogin

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
from connector.payload import CallReport
from connector.phone import PhoneNumber
from connector.render import truncate_to

__all__ = [
    "CALL_DATE_ZONE",
    "DESCRIPTION_LIMIT",
    "JWT_BEARER_GRANT",
    "REQUEST_LIMIT_PARK",
    "SUBJECT_LIMIT",
    "TASK_FIELDS",
    "SalesforceAdapter",
    "SalesforceOptions",
    "build_sosl",
    "escape_soql",
    "escape_sosl",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Task.Subject, Task.CallObject, Task.CallDisposition and Case.Subject hold 255 characters.
SUBJECT_LIMIT: Final = 255
#: Task.Description ("Comments") and Case.Description hold 32,000 characters.
DESCRIPTION_LIMIT: Final = 32_000
#: How long the target is parked after Salesforce refused a request for the daily allocation.
REQUEST_LIMIT_PARK: Final = timedelta(hours=1)
#: Wait after ``REQUEST_LIMIT_EXCEEDED`` for too many concurrent long-running requests.
CONCURRENT_LIMIT_RETRY_SECONDS: Final = 60.0
#: The zone of the call's local date (``ActivityDate``) when the mapping does not set it.
CALL_DATE_ZONE: Final = "Europe/Berlin"
#: OAuth grant type of the JWT bearer flow.
JWT_BEARER_GRANT: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: Lifetime of a JWT bearer assertion (Salesforce accepts expiries at most 3 minutes ahead).
JWT_LIFETIME_SECONDS: Final = 180
#: SOAP ``login()`` is not available from API version 65.0 on.
_SOAP_LOGIN_MAX_VERSION: Final = 64.0
#: A remembered "this number got lead X" is trusted this long (SOSL has caught up by then).
LEAD_MEMO_SECONDS: Final = 24 * 3600.0
#: A "someone is creating the lead for this number" claim older than this is taken over.
_LEAD_CLAIM_STALE_SECONDS: Final = 600.0
#: How far Salesforce's and our clocks may disagree when looking for a case created by us.
_CLOCK_SLACK: Final = timedelta(minutes=5)

#: sObject Collections take at most 200 records per request.
_MAX_RECORDS: Final = 200

_PENDING: Final = "task_pending"
_PENDING_SINCE: Final = "task_pending_since"
_LINK_PENDING: Final = "note_link_pending"

SEARCH_OBJECTS: Final = ("contact", "lead", "account", "person_account")
WHAT_RULES: Final = ("account", "open_opportunity", "none")
_SOBJECTS: Final = {"contact": "Contact", "lead": "Lead", "account": "Account"}
_OBJECT_TYPES: Final = {sobject: object_type for object_type, sobject in _SOBJECTS.items()}
_RETURNING_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "contact": (
        "Id",
        "Name",
        "Phone",
        "MobilePhone",
        "HomePhone",
        "OtherPhone",
        "AccountId",
        "OwnerId",
        "LastModifiedDate",
    ),
    "lead": ("Id", "Name", "Phone", "MobilePhone", "OwnerId", "LastModifiedDate"),
    "account": ("Id", "Name", "Phone", "OwnerId", "LastModifiedDate"),
}
_PERSON_ACCOUNT_FIELDS: Final = (
    "PersonMobilePhone",
    "PersonHomePhone",
    "PersonOtherPhone",
    "PersonContactId",
    "IsPersonAccount",
)
_PHONE_FIELDS: Final = (
    "Phone",
    "MobilePhone",
    "HomePhone",
    "OtherPhone",
    "PersonMobilePhone",
    "PersonHomePhone",
    "PersonOtherPhone",
)
_SEARCH_FILTERS: Final = {"lead": "IsConverted = false"}
#: Task fields the adapter writes itself; `check` verifies they exist and are createable.
TASK_FIELDS: Final = (
    "Subject",
    "Description",
    "CallObject",
    "CallType",
    "CallDurationInSeconds",
    "TaskSubtype",
    "Type",
    "WhoId",
    "WhatId",
    "ActivityDate",
    "Status",
    "Priority",
    "OwnerId",
)
#: Fields the mapping may not set: they carry the links and the idempotency key.
_OWN_FIELDS: Final = frozenset({"id", "attributes", "callobject", "whoid", "whatid", "tasksubtype"})
_FIELD_LIMITS: Final = {
    "subject": SUBJECT_LIMIT,
    "description": DESCRIPTION_LIMIT,
    "calldisposition": SUBJECT_LIMIT,
}

#: Salesforce's reserved characters in SOSL search terms (FIND {...}).
_SOSL_RESERVED: Final = frozenset("?&|!{}[]()^~*:\\\"'+-")
_SOQL_ESCAPES: Final = {
    "\\": "\\\\",
    "'": "\\'",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}

#: Record error codes that a later attempt can overcome.
_RETRYABLE_CODES: Final = frozenset(
    {
        "UNABLE_TO_LOCK_ROW",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "SERVER_UNAVAILABLE",
        "UNKNOWN_EXCEPTION",
        "REQUEST_RUNNING_TOO_LONG",
        "QUERY_TIMEOUT",
    }
)
#: Error codes whose message ends in the offending value (``Label: reason: value``).
_VALUE_ECHOING: Final = frozenset(
    {
        "STRING_TOO_LONG",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "INVALID_EMAIL_ADDRESS",
        "FIELD_INTEGRITY_EXCEPTION",
        "MALFORMED_ID",
        "DUPLICATE_VALUE",
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        "NUMBER_OUTSIDE_VALID_RANGE",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
    }
)
#: Error codes whose message quotes the whole query or search text (which holds the number).
_QUERY_ECHOING: Final = frozenset(
    {"MALFORMED_QUERY", "MALFORMED_SEARCH", "INVALID_QUERY_FILTER_OPERATOR", "INVALID_SEARCH"}
)
_OAUTH_RETRYABLE: Final = frozenset({"rate_limit_exceeded", "unknown_error", "server_error"})
_SOAP_RETRYABLE: Final = frozenset(
    {"SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION", "REQUEST_LIMIT_EXCEEDED"}
)

_EMAIL_RE: Final = re.compile(r"[^\s@<>()\"',;:]+@[^\s@<>()\"',;:]+")
_PHONE_LIKE_RE: Final = re.compile(r"(?<!\w)\+?\d[\d\s().\\/-]{4,}\d(?!\w)")
_QUOTED_RE: Final = re.compile(r"\"[^\"]*\"")
_SF_ID_RE: Final = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_API_NAME_RE: Final = r"^[A-Za-z][A-Za-z0-9_]*$"


# --- public helpers --------------------------------------------------------------------------


def escape_sosl(text: str) -> str:
    """`text` with every SOSL reserved character (``? & | ! { } [ ] ( ) ^ ~ * : \\ " ' + -``)
    preceded by a backslash, safe inside ``FIND {...}`` and inside a quoted phrase there.

    ``+49 (211) 635534-00`` → ``\\+49 \\(211\\) 635534\\-00``.
    """
    return "".join("\\" + char if char in _SOSL_RESERVED else char for char in text)


def escape_soql(text: str) -> str:
    """`text` escaped for a SOQL string literal (between single quotes): backslash, quote and
    control characters get their backslash escapes."""
    return "".join(_SOQL_ESCAPES.get(char, char) for char in text)


def _soql_string(text: str) -> str:
    return f"'{escape_soql(text)}'"


def _select(selected: str, sobject: str, where: str, tail: str = "") -> str:
    """A SOQL query; every value inside `where` must come from `_soql_string`."""
    query = f"SELECT {selected} FROM {sobject} WHERE {where}"  # noqa: S608 - values are escaped
    return f"{query} {tail}" if tail else query


def build_sosl(
    number: PhoneNumber, object_types: Sequence[str], *, person_accounts: bool = False
) -> str:
    """The SOSL phone search for `number` over `object_types` (``contact``, ``lead``,
    ``account``), as `SalesforceAdapter.search_by_phone` sends it.

    Every spelling of `number` (`PhoneNumber.variants`) becomes a quoted, escaped phrase, OR-ed
    in one ``FIND {...} IN PHONE FIELDS``; ``RETURNING`` lists the fields a `CrmRecord` needs,
    Leads without converted ones. `person_accounts` adds the person account phone fields and
    ``PersonContactId`` to ``Account``.
    """
    terms = " OR ".join(f'"{escape_sosl(variant)}"' for variant in number.variants())
    returning = []
    for object_type in object_types:
        selected = list(_RETURNING_FIELDS[object_type])
        if object_type == "account" and person_accounts:
            selected += _PERSON_ACCOUNT_FIELDS
        condition = _SEARCH_FILTERS.get(object_type)
        where = f" WHERE {condition}" if condition else ""
        returning.append(f"{_SOBJECTS[object_type]}({', '.join(selected)}{where})")
    return f"FIND {{{terms}}} IN PHONE FIELDS RETURNING {', '.join(returning)}"


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


def _https_url(value: str) -> None:
    validate.URL(schemes={"https"}, require_tld=False)(value)


def _instance_url(value: str) -> None:
    _https_url(value)
    if urlsplit(value).path not in ("", "/") or urlsplit(value).query:
        raise ValidationError("Give only https://HOST (your My Domain URL), without a path.")


def _my_domain(value: str) -> None:
    if value.lower() in ("login", "test"):
        raise ValidationError(
            "The client credentials flow needs your My Domain (e.g. acme.my), not "
            f"{value!r}: Salesforce refuses it on login.salesforce.com."
        )
    if not re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*", value):
        raise ValidationError("Must be the part before .salesforce.com, e.g. acme.my.")


_API_NAME = validate.Regexp(
    _API_NAME_RE, error="Must be a Salesforce API name, e.g. Phone_E164__c."
)


class _ClientCredentialsAuth(OptionsSchema):
    client_id = fields.String(required=True, validate=validate.Length(min=1))
    client_secret = fields.String(required=True, validate=validate.Length(min=1))
    domain = fields.String(load_default=None, allow_none=True, validate=_my_domain)
    token_url = fields.String(load_default=None, allow_none=True, validate=_https_url)


class _JwtBearerAuth(OptionsSchema):
    consumer_key = fields.String(required=True, validate=validate.Length(min=1))
    username = fields.String(required=True, validate=validate.Length(min=1))
    private_key_file = fields.String(required=True, validate=validate.Length(min=1))
    audience = fields.String(load_default="https://login.salesforce.com", validate=_https_url)
    token_url = fields.String(load_default=None, allow_none=True, validate=_https_url)


class _SessionAuth(OptionsSchema):
    session_id = fields.String(required=True, validate=validate.Length(min=1))


class _PasswordAuth(OptionsSchema):
    username = fields.String(required=True, validate=validate.Length(min=1))
    password = fields.String(required=True, validate=validate.Length(min=1))
    security_token = fields.String(load_default="")
    domain = fields.String(load_default="login", validate=validate.Length(min=1))


#: (method, schema, keys that identify it) of the supported logins.
_AUTH_FLOWS: Final[tuple[tuple[str, type[OptionsSchema], frozenset[str]], ...]] = (
    ("client_credentials", _ClientCredentialsAuth, frozenset({"client_id", "client_secret"})),
    ("jwt_bearer", _JwtBearerAuth, frozenset({"consumer_key", "private_key_file", "audience"})),
    ("session", _SessionAuth, frozenset({"session_id"})),
    ("password", _PasswordAuth, frozenset({"password", "security_token"})),
)
_AUTH_HELP: Final = (
    "Give exactly one login: {client_id, client_secret, domain} (OAuth client credentials), "
    "{consumer_key, username, private_key_file} (OAuth JWT bearer), {session_id} (an existing "
    "session) or {username, password, security_token} (SOAP login, being retired by Salesforce)."
)


class _AuthField(fields.Field[dict[str, Any]]):
    """The ``auth`` option: one of the login flows, returned with ``method`` set."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise ValidationError(_AUTH_HELP)
        flows = [(name, schema) for name, schema, keys in _AUTH_FLOWS if keys & set(value)]
        if len(flows) != 1:
            raise ValidationError(_AUTH_HELP)
        name, schema = flows[0]
        loaded: dict[str, Any] = schema().load(value)
        return {"method": name, **loaded}


class _CaseOptions(OptionsSchema):
    channels = fields.List(_IdString(), required=True, validate=validate.Length(min=1))
    record_type = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(
            r"^012[A-Za-z0-9]{12}([A-Za-z0-9]{3})?$", error="A RecordType id."
        ),
    )
    status = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1))
    origin = fields.String(load_default="Phone", validate=validate.Length(min=1))


class _LeadDefaults(OptionsSchema):
    last_name = fields.String(load_default="Unknown caller", validate=validate.Length(1, 80))
    company = fields.String(load_default="Unknown company", validate=validate.Length(1, 255))


class SalesforceOptions(OptionsSchema):
    """Options of a ``salesforce`` target (see the module docstring for what they change)."""

    instance_url = fields.String(required=True, validate=_instance_url)
    api_version = fields.String(
        load_default="59.0",
        validate=validate.Regexp(r"^\d{2,3}\.0$", error="An API version such as 59.0."),
    )
    auth = _AuthField(required=True)
    connect_timeout = fields.Float(load_default=5.0, validate=validate.Range(min=0.1, max=120))
    read_timeout = fields.Float(load_default=30.0, validate=validate.Range(min=0.1, max=600))
    match_field = fields.String(load_default=None, allow_none=True, validate=_API_NAME)
    search_objects = fields.List(
        fields.String(validate=validate.OneOf(SEARCH_OBJECTS)),
        load_default=lambda: ["contact", "lead"],
        validate=validate.Length(min=1),
    )
    external_id_field = fields.String(load_default=None, allow_none=True, validate=_API_NAME)
    what_rule = fields.String(load_default="account", validate=validate.OneOf(WHAT_RULES))
    case = fields.Nested(_CaseOptions, load_default=None, allow_none=True)
    lead_defaults = fields.Nested(
        _LeadDefaults,
        load_default=lambda: {"last_name": "Unknown caller", "company": "Unknown company"},
    )
    mapping = fields.String(load_default=None, allow_none=True)
    owners = fields.Dict(
        keys=_IdString(), values=fields.String(validate=validate.Length(min=1)), load_default=dict
    )

    @post_load
    def _normalise(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data["instance_url"] = data["instance_url"].rstrip("/")
        data["search_objects"] = list(dict.fromkeys(data["search_objects"]))
        return data


# --- small helpers ---------------------------------------------------------------------------


class _TimeoutHTTPAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` that gives every request a default timeout and never retries."""

    def __init__(self, timeout: tuple[float, float]) -> None:
        super().__init__(max_retries=0)
        self.timeout = timeout

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send `request` with this adapter's timeout unless the caller gave one."""
        return super().send(
            request,
            stream=stream,
            timeout=self.timeout if timeout is None else timeout,
            verify=verify,
            cert=cert,
            proxies=proxies,
        )


def _scrub(text: str, limit: int = 300) -> str:
    """`text` without e-mail addresses and phone-number-like digit runs, on one line, cut."""
    text = _EMAIL_RE.sub("…", text)
    text = _PHONE_LIKE_RE.sub("…", text)
    return truncate_to(" ".join(text.split()), limit)


def _safe_error_text(code: str, message: str) -> str:
    """Salesforce's error `message` without the values it may echo (see `_VALUE_ECHOING`)."""
    if code in _QUERY_ECHOING:
        return "(query text withheld)"
    if code in _VALUE_ECHOING:
        parts = message.split(": ", 2)
        if len(parts) == 3:
            message = f"{parts[0]}: {parts[1]}"
    if code == "JSON_PARSER_ERROR":
        message = _QUOTED_RE.sub("…", message)
    return _scrub(message)


def _error_of(content: Any) -> tuple[str, str]:
    """(errorCode, message) of a REST error body (``[{"errorCode", "message"}]``)."""
    first = content[0] if isinstance(content, list) and content else content
    if isinstance(first, Mapping):
        code = str(first.get("errorCode") or first.get("statusCode") or "")
        return code, str(first.get("message") or "")
    return "", ""


def _parse_sf_datetime(value: Any) -> datetime | None:
    """``2024-05-01T10:00:00.000+0000`` → aware datetime; anything else → None."""
    if not isinstance(value, str) or not value:
        return None
    for pattern in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(value, pattern)
        except ValueError:
            continue
    return None


def _json_value(value: Any) -> Any:
    """A mapping value as JSON for Salesforce: dates as ``YYYY-MM-DD``, datetimes in UTC."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _limited(name: str, value: Any) -> Any:
    limit = _FIELD_LIMITS.get(name.lower())
    if limit is not None and value is not None:
        return truncate_to(value, limit)
    return value


def _given(values: Mapping[str, Any], name: str) -> Any:
    """The value of field `name` in `values` (Salesforce field names ignore case), or None."""
    wanted = name.lower()
    return next((value for key, value in values.items() if key.lower() == wanted), None)


def _merge_fields(values: dict[str, Any], extra: Mapping[str, Any], skip: Iterable[str]) -> None:
    """Add the mapping's `extra` fields to `values` (names ignore case; the adapter's own link
    and key fields and `skip` are left alone), each cut to its known limit."""
    names = {name.lower(): name for name in values}
    skipped = {name.lower() for name in skip} | _OWN_FIELDS
    for name, value in extra.items():
        lower = name.lower()
        if lower in skipped:
            continue
        values[names.get(lower, name)] = _limited(name, _json_value(value))


def _call_object(call_id: str) -> str:
    """The sipgate call id as it fits ``Task.CallObject`` (255 characters)."""
    return truncate_to(call_id, SUBJECT_LIMIT, marker="")


def _follow_up_marker(call_id: str, number: int) -> str:
    """``CallObject`` of the `number`-th follow-up Task: ``<call id>#<number>``."""
    suffix = f"#{number}"
    return truncate_to(call_id, SUBJECT_LIMIT - len(suffix), marker="") + suffix


def _note_title(subject: str, call_id: str) -> str:
    """The note's title: the subject, then the call id (which makes the title unique)."""
    suffix = f" (sipgate call {call_id})"
    if len(suffix) >= SUBJECT_LIMIT:
        return truncate_to(suffix.strip(), SUBJECT_LIMIT, marker="")
    return truncate_to(subject, SUBJECT_LIMIT - len(suffix)) + suffix


def _note_content(text: str) -> str:
    """Enhanced Note content: HTML paragraphs of the escaped text, base64 encoded.

    Salesforce strips new lines and unsafe HTML from ``ContentNote.Content``, so every line
    becomes its own ``<p>``.
    """
    paragraphs = "".join(
        f"<p>{html.escape(line)}</p>" for line in text.splitlines() if line.strip()
    )
    return base64.b64encode((paragraphs or "<p></p>").encode("utf-8")).decode("ascii")


def _duration_seconds(report: CallReport) -> int:
    return int(report.duration.total_seconds() + 0.5)


def _memo_key(number: PhoneNumber) -> str:
    """Memo key for "the lead of this number" (hashed: no phone numbers in the ledger's keys)."""
    return "lead:" + hashlib.sha256(number.e164.encode("utf-8")).hexdigest()[:32]


def _is_sf_id(value: str) -> bool:
    return bool(_SF_ID_RE.match(value))


# --- the plan of one write -------------------------------------------------------------------


@dataclass(frozen=True)
class _Targets:
    """What the call is logged on, derived from the chosen matches."""

    who_id: str | None = None
    who_type: str | None = None  # contact, lead, person_account
    account_id: str | None = None

    @property
    def contact_id(self) -> str | None:
        return self.who_id if self.who_type in ("contact", "person_account") else None


def _targets(matches: Sequence[CrmRecord]) -> _Targets:
    """WhoId: the first contact, lead or person account; the account: the contact's, else the
    first matched account (a lead's task cannot have a WhatId)."""
    who = next(
        (
            r
            for r in matches
            if r.object_type in ("contact", "lead")
            or (r.object_type == "account" and r.extra.get("person_contact_id"))
        ),
        None,
    )
    account = next((r.id for r in matches if r.object_type == "account"), None)
    if who is None:
        return _Targets(None, None, account)
    if who.object_type == "contact":
        return _Targets(who.id, "contact", who.parent_id or account)
    if who.object_type == "lead":
        return _Targets(who.id, "lead", None)
    return _Targets(str(who.extra["person_contact_id"]), "person_account", who.id)


@dataclass(frozen=True)
class _Item:
    """One record of the write: its journal key, sObject type, fields and lookup marker."""

    key: str
    sobject: str
    values: Mapping[str, Any]
    marker: str = ""

    def record(self) -> dict[str, Any]:
        return {"attributes": {"type": self.sobject}, **self.values}


@dataclass(frozen=True)
class _Request:
    """One sObject Collections request."""

    method: str  # POST (create) or PATCH (upsert by external id)
    path: str
    items: tuple[_Item, ...]

    def body(self) -> dict[str, Any]:
        return {"allOrNone": False, "records": [item.record() for item in self.items]}


@dataclass(frozen=True)
class _Plan:
    items: tuple[_Item, ...]
    targets: _Targets
    what_id: str | None
    link_target: str | None
    lookups: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class _TaskValues:
    """The org's Task picklist values the adapter needs (read from TaskStatus/TaskPriority)."""

    closed_status: str
    open_status: str
    priorities: Mapping[str, str] = field(default_factory=dict)


# --- the adapter -----------------------------------------------------------------------------


class SalesforceAdapter(Adapter):
    """Logs calls as Salesforce Tasks (see the module docstring); idempotent per call id.

    `session` replaces the `requests.Session` the adapter would create (tests pass one that
    trusts a local server's certificate); the adapter mounts its timeout adapter on it.
    """

    type_name = "salesforce"
    config_schema = SalesforceOptions
    searchable_objects = ("contact", "lead", "account")
    creatable_objects = ("lead",)
    field_limits = {"Subject": SUBJECT_LIMIT, "Description": DESCRIPTION_LIMIT}
    supports_overflow = True  # an Enhanced Note (ContentNote) takes what does not fit

    @classmethod
    def from_config(cls, target: TargetConfig) -> Self:
        """The adapter for `target`; `check` also verifies the policy's owners and every Task
        field the mapping writes."""
        owners = {f"users.{user}": owner for user, owner in target.policy.owners.users.items()}
        if target.policy.owners.fallback:
            owners["fallback"] = target.policy.owners.fallback
        task_fields = {name: "" for name in target.policy.fields}
        return cls(target.name, {**target.options, "owners": owners, "task_fields": task_fields})

    def __init__(
        self,
        name: str,
        options: Mapping[str, Any],
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(name, options)
        self.session = session or requests.Session()
        timeouts = _TimeoutHTTPAdapter(
            (float(options["connect_timeout"]), float(options["read_timeout"]))
        )
        self.session.mount("https://", timeouts)
        self.session.mount("http://", timeouts)
        self._instance_url: str = options["instance_url"]
        self._version: str = options["api_version"]
        self._lock = threading.RLock()
        self._sf: Salesforce | None = None
        self._task_values: _TaskValues | None = None
        self._priorities: Mapping[str, str] | None = None
        self._owners_by_email: dict[str, str | None] = {}
        if options["auth"]["method"] == "password":
            log.warning(
                "Salesforce target %r logs in with username and password (SOAP login()); "
                "Salesforce is retiring that login (not in API 65.0+, off by default in new orgs, "
                "gone in Summer '27): switch to OAuth client credentials or JWT bearer.",
                name,
            )

    # --- login and requests ------------------------------------------------------------------

    def _client(self) -> Salesforce:
        with self._lock:
            if self._sf is None:
                self._sf = self._connect(self._login())
            return self._sf

    def _relogin(self, stale: Salesforce) -> Salesforce:
        with self._lock:
            if self._sf is not None and self._sf is not stale:
                return self._sf  # another thread logged in already
            if self.options["auth"]["method"] == "session":
                raise PermanentError(
                    "Salesforce refused the configured session id (INVALID_SESSION_ID); "
                    "configure a new one or an OAuth login."
                )
            self._sf = None
            self._sf = self._connect(self._login())
            return self._sf

    def _connect(self, token: str) -> Salesforce:
        return Salesforce(
            instance_url=self._instance_url,
            session_id=token,
            session=self.session,
            version=self._version,
        )

    def _login(self) -> str:
        """A new access token (or the configured session id)."""
        auth = self.options["auth"]
        method = auth["method"]
        if method == "session":
            return str(auth["session_id"])
        if method == "password":
            return self._soap_login(auth)
        if method == "client_credentials":
            url = self._client_credentials_url(auth)
            data = {
                "grant_type": "client_credentials",
                "client_id": auth["client_id"],
                "client_secret": auth["client_secret"],
            }
        else:
            url = auth["token_url"] or f"{auth['audience'].rstrip('/')}/services/oauth2/token"
            data = {"grant_type": JWT_BEARER_GRANT, "assertion": self._jwt_assertion(auth)}
        try:
            response = self.session.post(url, data=data, headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            raise RetryableError(f"Salesforce login failed: {type(exc).__name__}") from exc
        token = self._token_from(response)
        log.info("Salesforce target %r: logged in (%s)", self.name, method)
        return token

    def _client_credentials_url(self, auth: Mapping[str, Any]) -> str:
        if auth["token_url"]:
            return str(auth["token_url"])
        if auth["domain"]:
            return f"https://{auth['domain']}.salesforce.com/services/oauth2/token"
        return f"{self._instance_url}/services/oauth2/token"

    @staticmethod
    def _jwt_assertion(auth: Mapping[str, Any]) -> str:
        try:
            key = Path(auth["private_key_file"]).read_bytes()
        except OSError as exc:
            raise PermanentError(
                f"Cannot read the JWT private key file: {type(exc).__name__}"
            ) from exc
        claims = {
            "iss": auth["consumer_key"],
            "sub": auth["username"],
            "aud": auth["audience"],
            "exp": int(time.time()) + JWT_LIFETIME_SECONDS,
        }
        try:
            return jwt.encode(claims, key, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise PermanentError(
                f"Cannot sign the JWT assertion with the private key file: {type(exc).__name__}"
            ) from exc

    @staticmethod
    def _token_from(response: requests.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 200 and isinstance(body, Mapping):
            token = body.get("access_token")
            if isinstance(token, str) and token:
                return token
        error = str(body.get("error") or "") if isinstance(body, Mapping) else ""
        description = str(body.get("error_description") or "") if isinstance(body, Mapping) else ""
        text = f"Salesforce login refused: HTTP {response.status_code}"
        if error:
            text += f" {error}"
        if description:
            text += f" ({_scrub(description, 200)})"
        if response.status_code >= 500 or error in _OAUTH_RETRYABLE or response.status_code == 200:
            raise RetryableError(text)
        raise PermanentError(text)

    def _soap_login(self, auth: Mapping[str, Any]) -> str:
        version = self._version
        if float(version) > _SOAP_LOGIN_MAX_VERSION:
            version = f"{_SOAP_LOGIN_MAX_VERSION:.1f}"
        try:
            session_id, _instance = SalesforceLogin(
                username=auth["username"],
                password=auth["password"],
                security_token=auth["security_token"],
                domain=auth["domain"],
                session=self.session,
                sf_version=version,
            )
        except SalesforceAuthenticationFailed as exc:
            code = exc.code
            text = f"Salesforce SOAP login refused: {code}"
            if (isinstance(code, int) and code >= 500) or code in _SOAP_RETRYABLE:
                raise RetryableError(text) from exc
            raise PermanentError(text) from exc
        except requests.RequestException as exc:
            raise RetryableError(f"Salesforce SOAP login failed: {type(exc).__name__}") from exc
        return session_id

    def _call(self, what: str, operation: Callable[[Salesforce], _T]) -> _T:
        """Run `operation` against the API; log in again once on ``INVALID_SESSION_ID``.

        Every failure comes out as an `AdapterError` (see `_translate`).
        """
        client = self._client()
        try:
            return operation(client)
        except SalesforceExpiredSession:
            log.info("Salesforce target %r: session expired, logging in again", self.name)
        except (SalesforceError, requests.RequestException, ValueError) as exc:
            raise self._translate(exc, what) from exc
        client = self._relogin(client)
        try:
            return operation(client)
        except SalesforceExpiredSession as exc:
            raise RetryableError(
                f"Salesforce {what}: INVALID_SESSION_ID again right after a new login"
            ) from exc
        except (SalesforceError, requests.RequestException, ValueError) as exc:
            raise self._translate(exc, what) from exc

    def _translate(self, exc: Exception, what: str) -> AdapterError:
        """The pipeline's error for a failed request (see the module docstring)."""
        if isinstance(exc, requests.ConnectTimeout):
            return RetryableError(f"Salesforce {what}: connection timed out")
        if isinstance(exc, requests.Timeout):
            return RetryableError(f"Salesforce {what}: no answer in time (outcome unknown)")
        if isinstance(exc, requests.ConnectionError):
            return RetryableError(f"Salesforce {what}: connection failed ({type(exc).__name__})")
        if isinstance(exc, requests.RequestException):
            return RetryableError(f"Salesforce {what}: {type(exc).__name__}")
        if isinstance(exc, SalesforceError):
            code, message = _error_of(exc.content)
            return self._status_error(int(exc.status), code, message, what)
        return RetryableError(f"Salesforce {what}: unreadable answer ({type(exc).__name__})")

    def _status_error(self, status: int, code: str, message: str, what: str) -> AdapterError:
        text = f"Salesforce {what}: HTTP {status}"
        if code:
            text += f" {code}"
        safe = _safe_error_text(code, message) if message else ""
        if safe:
            text += f": {safe}"
        if code == "REQUEST_LIMIT_EXCEEDED":
            if "concurrent" in message.lower():
                return RetryableError(text, retry_after=CONCURRENT_LIMIT_RETRY_SECONDS)
            return self._parked(text)
        if code in _RETRYABLE_CODES or status >= 500 or status in (408, 429):
            return RetryableError(text)
        return PermanentError(text)

    def _parked(self, text: str) -> TargetParked:
        until = datetime.now(UTC) + REQUEST_LIMIT_PARK
        usage = ""
        sf = self._sf
        known = sf.api_usage.get("api-usage") if sf is not None else None
        if known is not None:
            usage = f" (last seen usage {known.used}/{known.total})"
        return TargetParked(
            f"{text}. The org's API requests of the last 24 hours are used up{usage}; "
            f"Salesforce counts a rolling window, so this target pauses "
            f"{int(REQUEST_LIMIT_PARK.total_seconds() // 60)} minutes at a time.",
            until=until,
        )

    def _query(self, soql: str, what: str) -> list[dict[str, Any]]:
        result = self._call(what, lambda sf: sf.query(soql))
        records = result.get("records") if isinstance(result, Mapping) else None
        return [dict(row) for row in records or []]

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """(used, limit) of the org's daily API requests as last reported, or ``None``."""
        known = self._sf.api_usage.get("api-usage") if self._sf is not None else None
        return (known.used, known.total) if known is not None else None

    # --- search ------------------------------------------------------------------------------

    def _object_types(self, object_types: Sequence[str]) -> list[str]:
        wanted = list(object_types) or [
            "account" if item == "person_account" else item
            for item in self.options["search_objects"]
        ]
        unknown = [item for item in wanted if item not in self.searchable_objects]
        if unknown:
            raise ValueError(f"Salesforce cannot search {', '.join(unknown)}.")
        return list(dict.fromkeys(wanted))

    @property
    def _person_accounts(self) -> bool:
        return "person_account" in self.options["search_objects"]

    def _match_queries(self, number: PhoneNumber, object_types: Sequence[str]) -> dict[str, str]:
        match_field = self.options["match_field"]
        queries = {}
        for object_type in object_types:
            selected = list(_RETURNING_FIELDS[object_type])
            if object_type == "account" and self._person_accounts:
                selected += _PERSON_ACCOUNT_FIELDS
            selected.append(match_field)
            condition = f"{match_field} = {_soql_string(number.e164)}"
            extra = _SEARCH_FILTERS.get(object_type)
            if extra:
                condition += f" AND {extra}"
            queries[object_type] = _select(
                ", ".join(dict.fromkeys(selected)), _SOBJECTS[object_type], condition, "LIMIT 200"
            )
        return queries

    def _composite_queries(self, queries: Mapping[str, str]) -> dict[str, Any]:
        return {
            "allOrNone": False,
            "compositeRequest": [
                {
                    "method": "GET",
                    "url": f"/services/data/v{self._version}/query/?{urlencode({'q': soql})}",
                    "referenceId": object_type,
                }
                for object_type, soql in queries.items()
            ],
        }

    def describe_search(self, number: PhoneNumber, object_types: Sequence[str]) -> dict[str, Any]:
        """The request `search_by_phone` would send: the SOSL text, or the SOQL queries (and the
        ``/composite`` body when there are several) with ``match_field``."""
        types = self._object_types(object_types)
        if self.options["match_field"]:
            queries = self._match_queries(number, types)
            if len(queries) == 1:
                return {"request": "GET query", "soql": next(iter(queries.values()))}
            return {
                "request": "POST composite",
                "soql": list(queries.values()),
                "body": self._composite_queries(queries),
            }
        return {
            "request": "GET search",
            "sosl": build_sosl(number, types, person_accounts=self._person_accounts),
        }

    def search_by_phone(self, number: PhoneNumber, object_types: Sequence[str]) -> list[CrmRecord]:
        """Contacts, open Leads and Accounts whose phone fields may hold `number`, in one request.

        Empty `object_types` means the ``search_objects`` option. Hits are not re-checked here:
        ``phones`` carries the stored values for the matching policy.
        """
        types = self._object_types(object_types)
        log.debug("Salesforce search for %s in %s", mask_number(number.e164), types)
        if not self.options["match_field"]:
            sosl = build_sosl(number, types, person_accounts=self._person_accounts)
            result = self._call("search", lambda sf: sf.search(sosl))
            rows = result.get("searchRecords") if isinstance(result, Mapping) else None
            return [record for row in rows or [] if (record := self._record(row)) is not None]
        queries = self._match_queries(number, types)
        if len(queries) == 1:
            rows = self._query(next(iter(queries.values())), "phone query")
        else:
            rows = self._composite_query_rows(queries)
        return [record for row in rows if (record := self._record(row)) is not None]

    def _composite_query_rows(self, queries: Mapping[str, str]) -> list[dict[str, Any]]:
        body = self._composite_queries(queries)
        answer = self._call(
            "phone query", lambda sf: sf.restful("composite", method="POST", json=body)
        )
        responses = answer.get("compositeResponse") if isinstance(answer, Mapping) else None
        if not isinstance(responses, list):
            raise RetryableError("Salesforce phone query: unexpected /composite answer")
        rows: list[dict[str, Any]] = []
        for response in responses:
            status = int(response.get("httpStatusCode") or 0)
            sub_body = response.get("body")
            if status != 200 or not isinstance(sub_body, Mapping):
                code, message = _error_of(sub_body)
                raise self._status_error(status, code, message, "phone query")
            rows.extend(dict(row) for row in sub_body.get("records") or [])
        return rows

    def _record(self, row: Mapping[str, Any]) -> CrmRecord | None:
        attributes = row.get("attributes")
        sobject = attributes.get("type") if isinstance(attributes, Mapping) else None
        object_type = _OBJECT_TYPES.get(str(sobject))
        if object_type is None or not row.get("Id"):
            return None
        names = [*_PHONE_FIELDS, self.options["match_field"] or ""]
        phones = tuple(dict.fromkeys(str(row[name]) for name in names if name and row.get(name)))
        extra: dict[str, Any] = {}
        if object_type == "account" and row.get("PersonContactId"):
            extra["person_contact_id"] = row["PersonContactId"]
        return CrmRecord(
            object_type=object_type,
            id=str(row["Id"]),
            phones=phones,
            name=str(row.get("Name") or ""),
            owner_id=row.get("OwnerId") or None,
            modified_at=_parse_sf_datetime(row.get("LastModifiedDate")),
            parent_id=(row.get("AccountId") or None) if object_type == "contact" else None,
            extra=extra,
        )

    # --- leads for unknown callers ------------------------------------------------------------

    def create_record(
        self, object_type: str, number: PhoneNumber, fields: Mapping[str, Any], journal: Journal
    ) -> CrmRecord:
        """Create a Lead for an unknown caller, at most one per number.

        ``Phone`` is the international format, ``LastName``/``Company`` come from
        ``lead_defaults`` unless `fields` sets them. A repeat call of the same number gets the
        same Lead although SOSL cannot see it yet: the shared memo remembers it for
        `LEAD_MEMO_SECONDS`, and a delivery that finds another one creating it retries later.
        """
        if object_type != "lead":
            raise ValueError(f"Salesforce targets create leads, not {object_type!r}.")
        phone = number.international()
        values = self._lead_values(phone, fields)
        recorded = journal.get("lead")
        if recorded:
            return self._lead(str(recorded), values)
        key = _memo_key(number)
        token = str(journal.get("lead_claim") or secrets.token_hex(8))
        known, look_first = self._claim_lead(key, token)
        if known is None and (look_first or journal.get("lead_claim")):
            known = self._find_lead(phone)
        if known is not None:
            self.memo.set(key, f"{known}|{time.time()}")
            journal.record("lead", known)
            return self._lead(known, values)
        journal.record("lead_claim", token)
        try:
            result = self._call(
                "create Lead", lambda sf: sf.restful("sobjects/Lead/", method="POST", json=values)
            )
        except PermanentError:
            self.memo.delete(key)  # nothing was created: the next call of this number may try
            raise
        lead_id = str(result["id"]) if isinstance(result, Mapping) and result.get("id") else ""
        if not lead_id:
            raise RetryableError("Salesforce create Lead: answer without id (outcome unknown)")
        self.memo.set(key, f"{lead_id}|{time.time()}")
        journal.record("lead", lead_id)
        log.info("Salesforce target %r: lead created for %s", self.name, mask_number(number.e164))
        return self._lead(lead_id, values)

    def _lead_values(self, phone: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        defaults = self.options["lead_defaults"]
        values: dict[str, Any] = {
            "LastName": defaults["last_name"],
            "Company": defaults["company"],
        }
        for name, value in fields.items():
            if name.lower() in _OWN_FIELDS or name.lower() == "phone":
                continue
            if value not in (None, ""):
                values[name] = _json_value(value)
        values["Phone"] = phone
        return values

    @staticmethod
    def _lead(lead_id: str, values: Mapping[str, Any]) -> CrmRecord:
        name = " ".join(str(values[k]) for k in ("FirstName", "LastName") if values.get(k))
        return CrmRecord("lead", lead_id, phones=(str(values["Phone"]),), name=name)

    def _claim_lead(self, key: str, token: str) -> tuple[str | None, bool]:
        """(lead id to reuse, None) or (None, look first?) when this delivery may create it.

        The memo holds ``<lead id>|<time>`` or ``pending|<time>|<claim token>``; a fresh claim of
        another delivery means "retry later", a stale one (its worker died) or our own earlier
        claim (whose outcome is unknown) is taken over after looking for the lead by SOQL.
        """
        now = time.time()
        claim = f"pending|{now}|{token}"
        if self.memo.reserve(key, claim):
            return None, False
        current = self.memo.get(key)
        state, stamp, owner = [*(current or "").split("|"), "", "", ""][:3]
        try:
            age = now - float(stamp)
        except ValueError:
            age = float("inf")
        if state and state != "pending" and age < LEAD_MEMO_SECONDS:
            return state, False
        busy = RetryableError(
            "Another delivery is creating the lead for this caller right now", retry_after=15
        )
        if state == "pending" and owner != token and age < _LEAD_CLAIM_STALE_SECONDS:
            raise busy
        if not self.memo.replace(key, current, claim):  # another delivery took it over first
            raise busy
        return None, True

    def _find_lead(self, phone: str) -> str | None:
        """An open Lead whose Phone is exactly `phone` (SOQL: no search index lag)."""
        rows = self._query(
            _select(
                "Id",
                "Lead",
                f"Phone = {_soql_string(phone)} AND IsConverted = false",
                "ORDER BY CreatedDate DESC LIMIT 1",
            ),
            "lead lookup",
        )
        return str(rows[0]["Id"]) if rows else None

    def resolve_owner(self, email: str) -> str | None:
        """The id of the active Salesforce User with this e-mail address (cached), or ``None``."""
        key = email.strip().lower()
        if key not in self._owners_by_email:
            rows = self._query(
                _select(
                    "Id", "User", f"Email = {_soql_string(key)} AND IsActive = true", "LIMIT 1"
                ),
                "owner lookup",
            )
            self._owners_by_email[key] = str(rows[0]["Id"]) if rows else None
        return self._owners_by_email[key]

    # --- the org's task values ------------------------------------------------------------------

    def _task_statuses(self) -> _TaskValues:
        with self._lock:
            if self._task_values is None:
                rows = self._query(
                    "SELECT ApiName, MasterLabel, IsClosed, IsDefault, SortOrder FROM TaskStatus "
                    "ORDER BY SortOrder",
                    "TaskStatus lookup",
                )
                closed = [r for r in rows if r.get("IsClosed")]
                open_ = [r for r in rows if not r.get("IsClosed")]
                if not closed or not open_:
                    raise PermanentError(
                        "The org's Task Status picklist needs a closed and an open value."
                    )
                default = next((r for r in open_ if r.get("IsDefault")), open_[0])
                self._task_values = _TaskValues(
                    _picklist_value(closed[0]), _picklist_value(default)
                )
            return self._task_values

    def _task_priorities(self) -> Mapping[str, str]:
        with self._lock:
            if self._priorities is None:
                rows = self._query(
                    "SELECT ApiName, MasterLabel, IsHighPriority, IsDefault, SortOrder "
                    "FROM TaskPriority ORDER BY SortOrder",
                    "TaskPriority lookup",
                )
                if not rows:
                    raise PermanentError("The org has no Task Priority values.")
                normal = next((r for r in rows if r.get("IsDefault")), rows[len(rows) // 2])
                high = next((r for r in rows if r.get("IsHighPriority")), rows[0])
                lower = [r for r in rows if r is not normal and r is not high]
                low = lower[-1] if lower else normal
                self._priorities = {
                    "low": _picklist_value(low),
                    "normal": _picklist_value(normal),
                    "high": _picklist_value(high),
                }
            return self._priorities

    # --- building the write ---------------------------------------------------------------------

    def _what_id(self, targets: _Targets, journal: Journal) -> tuple[str | None, dict[str, Any]]:
        """WhatId by ``what_rule`` (and the lookup it needed, for `describe_write`)."""
        rule = self.options["what_rule"]
        if rule == "none" or targets.who_type == "lead" or not targets.account_id:
            return None, {}
        if rule == "account":
            return targets.account_id, {}
        recorded = journal.get("what_id")
        if recorded is not None:
            return recorded or targets.account_id, {}
        soql = _select(
            "Id",
            "Opportunity",
            f"AccountId = {_soql_string(targets.account_id)} AND IsClosed = false",
            "ORDER BY LastModifiedDate DESC LIMIT 1",
        )
        rows = self._query(soql, "open Opportunity lookup")
        found = str(rows[0]["Id"]) if rows else ""
        journal.record("what_id", found)
        return found or targets.account_id, {"op": "GET query", "soql": soql, "found": found}

    def _subject(self, job: DeliveryJob) -> str:
        report = job.report
        given = _given(job.fields, "Subject")
        text = str(given) if given not in (None, "") else report.headline
        if not text:
            text = "Inbound call" if report.direction == "IN" else "Outbound call"
        return truncate_to(text, SUBJECT_LIMIT)

    @staticmethod
    def _description(job: DeliveryJob) -> str:
        given = _given(job.fields, "Description")
        if given not in (None, ""):
            return truncate_to(given, DESCRIPTION_LIMIT)
        report = job.report
        lines = [report.summary] if report.summary else []
        lines += [f"- {point}" for point in report.key_points]
        return truncate_to("\n".join(lines), DESCRIPTION_LIMIT)

    def _call_task(
        self,
        job: DeliveryJob,
        targets: _Targets,
        what_id: str | None,
        values: _TaskValues,
    ) -> dict[str, Any]:
        report = job.report
        start = report.start_time.astimezone(ZoneInfo(CALL_DATE_ZONE))
        task: dict[str, Any] = {
            "Subject": self._subject(job),
            "Description": self._description(job),
            "TaskSubtype": "Call",
            "Type": "Call",
            "CallType": "Inbound" if report.direction == "IN" else "Outbound",
            "CallDurationInSeconds": _duration_seconds(report),
            "ActivityDate": start.date().isoformat(),
            "Status": values.closed_status,
        }
        _merge_fields(task, job.fields, skip=("Subject", "Description"))
        if not task["Description"]:
            del task["Description"]
        task["CallObject"] = _call_object(report.call_id)
        if self.options["external_id_field"]:
            task[self.options["external_id_field"]] = task["CallObject"]
        if targets.who_id:
            task["WhoId"] = targets.who_id
        if what_id:
            task["WhatId"] = what_id
        if job.owner_id:
            task["OwnerId"] = job.owner_id
        return task

    def _follow_up(
        self,
        spec: TaskSpec,
        number: int,
        job: DeliveryJob,
        targets: _Targets,
        what_id: str | None,
        values: _TaskValues,
        priorities: Mapping[str, str],
    ) -> _Item:
        marker = _follow_up_marker(job.report.call_id, number)
        task: dict[str, Any] = {
            "Subject": truncate_to(spec.subject or "Follow-up", SUBJECT_LIMIT),
            "ActivityDate": spec.due.isoformat(),
            "Priority": priorities.get(spec.priority, priorities["normal"]),
            "Status": values.open_status,
            "CallObject": marker,
        }
        if spec.body:
            task["Description"] = truncate_to(spec.body, DESCRIPTION_LIMIT)
        if self.options["external_id_field"]:
            task[self.options["external_id_field"]] = marker
        owner = spec.owner_id or job.owner_id
        if owner:
            task["OwnerId"] = owner
        if targets.who_id:
            task["WhoId"] = targets.who_id
        if what_id:
            task["WhatId"] = what_id
        return _Item(f"follow_up.{number}", "Task", task, marker)

    def _case_applies(self, report: CallReport) -> bool:
        case = self.options["case"]
        if not case or report.channel is None:
            return False
        return report.channel.id in case["channels"] or report.channel.name in case["channels"]

    def _case(self, job: DeliveryJob, targets: _Targets, subject: str) -> _Item:
        case = self.options["case"]
        values: dict[str, Any] = {"Subject": subject, "Origin": case["origin"]}
        description = self._description(job)
        if description:
            values["Description"] = description
        if case["status"]:
            values["Status"] = case["status"]
        if case["record_type"]:
            values["RecordTypeId"] = case["record_type"]
        if targets.contact_id:
            values["ContactId"] = targets.contact_id
        if targets.account_id:
            values["AccountId"] = targets.account_id
        if job.remote is not None:
            values["SuppliedPhone"] = truncate_to(job.remote.international(), 40, marker="")
        return _Item("case", "Case", values, subject)

    def _plan(self, job: DeliveryJob, journal: Journal) -> _Plan:
        """Everything `write` creates for `job` (and the lookups that needs)."""
        targets = _targets(job.matches)
        what_id, lookup = self._what_id(targets, journal)
        values = self._task_statuses()
        priorities = self._task_priorities() if job.tasks else {}
        call = self._call_task(job, targets, what_id, values)
        items = [_Item("task", "Task", call, call["CallObject"])]
        items += [
            self._follow_up(spec, number, job, targets, what_id, values, priorities)
            for number, spec in enumerate(job.tasks, start=1)
        ]
        link_target = targets.who_id or what_id or targets.account_id
        if job.overflow.strip():
            if link_target:
                title = _note_title(call["Subject"], job.report.call_id)
                note = {"Title": title, "Content": _note_content(job.overflow)}
                items.append(_Item("note", "ContentNote", note, title))
            else:
                log.warning(
                    "Salesforce target %r: call %s matched no record; the text that did not fit "
                    "the Task is not stored",
                    self.name,
                    job.report.call_id,
                )
        if self._case_applies(job.report):
            items.append(self._case(job, targets, call["Subject"]))
        return _Plan(tuple(items), targets, what_id, link_target, (lookup,) if lookup else ())

    def _requests(self, items: Sequence[_Item]) -> list[_Request]:
        external = self.options["external_id_field"]
        tasks = tuple(item for item in items if external and item.sobject == "Task")
        others = tuple(item for item in items if item not in tasks)
        out = [
            _Request("PATCH", f"composite/sobjects/Task/{external}", tasks[i : i + _MAX_RECORDS])
            for i in range(0, len(tasks), _MAX_RECORDS)
        ]
        out += [
            _Request("POST", "composite/sobjects", others[i : i + _MAX_RECORDS])
            for i in range(0, len(others), _MAX_RECORDS)
        ]
        return out

    @staticmethod
    def _link(note_id: str, target: str) -> _Request:
        values = {
            "ContentDocumentId": note_id,
            "LinkedEntityId": target,
            "ShareType": "I",
            "Visibility": "AllUsers",
        }
        return _Request(
            "POST", "composite/sobjects", (_Item("note_link", "ContentDocumentLink", values),)
        )

    def describe_write(self, job: DeliveryJob) -> list[dict[str, Any]]:
        """The requests `write` would send for `job` on a first attempt, with their exact
        bodies. Writes nothing; may read the org's Task values and, for ``what_rule:
        open_opportunity``, the account's open Opportunity."""
        plan = self._plan(job, Journal())
        base = f"/services/data/v{self._version}/"
        ops: list[dict[str, Any]] = list(plan.lookups)
        for request in self._requests(plan.items):
            ops.append({"op": request.method, "path": base + request.path, "body": request.body()})
        if any(item.key == "note" for item in plan.items) and plan.link_target:
            link = self._link("<id of the ContentNote created above>", plan.link_target)
            ops.append({"op": link.method, "path": base + link.path, "body": link.body()})
        return ops

    # --- writing ----------------------------------------------------------------------------------

    def write(self, job: DeliveryJob, journal: Journal) -> WriteResult:
        """Log the call (see the module docstring); a retry creates only what is missing."""
        plan = self._plan(job, journal)
        if journal.get(_PENDING):
            self._reconcile(plan, job, journal)
        missing = [item for item in plan.items if not journal.get(item.key)]
        for request in self._requests(missing):
            self._send(request, journal)
        note_id = journal.get("note")
        if note_id and plan.link_target and not journal.get("note_link"):
            self._link_note(str(note_id), plan.link_target, journal)
        return WriteResult(refs=self._refs(plan, journal))

    @staticmethod
    def _refs(plan: _Plan, journal: Journal) -> dict[str, Any]:
        refs: dict[str, Any] = {
            "task": journal.get("task"),
            "follow_ups": [journal.get(i.key) for i in plan.items if i.key.startswith("follow_up")],
        }
        keys = {item.key for item in plan.items}
        if "note" in keys:
            refs["note"] = journal.get("note")
            refs["note_link"] = journal.get("note_link")
        if "case" in keys:
            refs["case"] = journal.get("case")
        if plan.what_id:
            refs["what_id"] = plan.what_id
        return refs

    def _send(self, request: _Request, journal: Journal) -> None:
        """Send one collection request and record every created id; raise for failed records."""
        creating = request.method == "POST"
        if creating:
            journal.record(_PENDING, True)
            journal.record(_PENDING_SINCE, datetime.now(UTC).isoformat())
        body = request.body()
        results = self._call(
            f"{request.method} {request.path}",
            lambda sf: sf.restful(request.path, method=request.method, json=body),
        )
        if not isinstance(results, list) or len(results) != len(request.items):
            raise RetryableError(f"Salesforce {request.path}: unexpected answer (outcome unknown)")
        failures: list[tuple[_Item, Sequence[Mapping[str, Any]]]] = []
        for item, result in zip(request.items, results, strict=True):
            if isinstance(result, Mapping) and result.get("success") and result.get("id"):
                journal.record(item.key, str(result["id"]))
            else:
                errors = result.get("errors") if isinstance(result, Mapping) else None
                failures.append((item, errors or []))
        if creating:
            journal.record(_PENDING, False)
        if failures:
            raise self._record_failures(failures, len(request.items))

    @staticmethod
    def _record_failures(
        failures: Sequence[tuple[_Item, Sequence[Mapping[str, Any]]]], total: int
    ) -> AdapterError:
        parts = []
        permanent = False
        for item, errors in failures:
            codes = [str(e.get("statusCode") or e.get("errorCode") or "") for e in errors] or [""]
            if any(code not in _RETRYABLE_CODES for code in codes):
                permanent = True
            details = "; ".join(
                f"{code or 'UNKNOWN'}: {_safe_error_text(code, str(e.get('message') or ''))}"
                + (f" [{', '.join(map(str, e['fields']))}]" if e.get("fields") else "")
                for code, e in zip(codes, errors or [{}], strict=False)
            )
            parts.append(f"{item.sobject} {item.key}: {details}")
        text = f"Salesforce rejected {len(failures)} of {total} records: " + " | ".join(parts)
        return PermanentError(text) if permanent else RetryableError(text)

    def _reconcile(self, plan: _Plan, job: DeliveryJob, journal: Journal) -> None:
        """After a create whose answer was lost: record what it created (see module docstring)."""
        open_items = [item for item in plan.items if not journal.get(item.key)]
        tasks = {item.marker.casefold(): item for item in open_items if item.sobject == "Task"}
        if tasks:
            markers = ", ".join(_soql_string(item.marker) for item in tasks.values())
            for row in self._query(
                _select("Id, CallObject", "Task", f"CallObject IN ({markers})"),
                "Task lookup after unknown outcome",
            ):
                found = tasks.pop(str(row.get("CallObject") or "").casefold(), None)
                if found is not None:
                    journal.record(found.key, str(row["Id"]))
        for item in open_items:
            if item.key == "note":
                rows = self._query(
                    _select("Id", "ContentNote", f"Title = {_soql_string(item.marker)}", "LIMIT 1"),
                    "note lookup after unknown outcome",
                )
                if rows:
                    journal.record("note", str(rows[0]["Id"]))
            elif item.key == "case":
                found_case = self._find_case(item, job, journal)
                if found_case:
                    journal.record("case", found_case)
        journal.record(_PENDING, False)

    def _find_case(self, item: _Item, job: DeliveryJob, journal: Journal) -> str | None:
        since_text = journal.get(_PENDING_SINCE)
        try:
            since = datetime.fromisoformat(str(since_text)) - _CLOCK_SLACK
        except ValueError:
            since = job.report.start_time
        conditions = [
            f"Subject = {_soql_string(item.marker)}",
            f"CreatedDate >= {since.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}",
        ]
        if item.values.get("ContactId"):
            conditions.append(f"ContactId = {_soql_string(str(item.values['ContactId']))}")
        elif item.values.get("SuppliedPhone"):
            conditions.append(f"SuppliedPhone = {_soql_string(str(item.values['SuppliedPhone']))}")
        rows = self._query(
            _select("Id", "Case", " AND ".join(conditions), "ORDER BY CreatedDate LIMIT 1"),
            "case lookup after unknown outcome",
        )
        return str(rows[0]["Id"]) if rows else None

    def _link_note(self, note_id: str, target: str, journal: Journal) -> None:
        if journal.get(_LINK_PENDING):
            rows = self._query(
                _select(
                    "Id",
                    "ContentDocumentLink",
                    f"ContentDocumentId = {_soql_string(note_id)} "
                    f"AND LinkedEntityId = {_soql_string(target)}",
                ),
                "note link lookup after unknown outcome",
            )
            if rows:
                journal.record("note_link", str(rows[0]["Id"]))
                journal.record(_LINK_PENDING, False)
                return
        journal.record(_LINK_PENDING, True)
        self._send(self._link(note_id, target), journal)
        journal.record(_LINK_PENDING, False)

    # --- preflight --------------------------------------------------------------------------------

    def check(self) -> list[CheckResult]:
        """Login, the fields and picklist values the adapter writes, the search fields, notes,
        cases and the mapped owners; one result per problem (and one per part that is fine)."""
        try:
            self._client()
        except AdapterError as exc:
            return [CheckResult(False, f"Cannot log in to Salesforce: {exc}")]
        method = self.options["auth"]["method"].replace("_", " ")
        results = [
            CheckResult(
                True, f"Logged in to {self._instance_url} (API v{self._version}, {method})."
            )
        ]
        describes: dict[str, Mapping[str, Any]] = {}
        steps: list[tuple[str, Callable[[dict[str, Mapping[str, Any]]], list[CheckResult]]]] = [
            ("Task fields", self._check_task_fields),
            ("Task status and priority", self._check_task_values),
            ("Search", self._check_search),
            ("Notes", self._check_notes),
            ("Cases", self._check_case),
            ("Owners", self._check_owners),
        ]
        for title, step in steps:
            try:
                results.extend(step(describes))
            except AdapterError as exc:
                results.append(CheckResult(False, f"{title}: {exc}"))
        usage = self.api_usage
        if usage is not None:
            results.append(
                CheckResult(True, f"API requests in the last 24 hours: {usage[0]} of {usage[1]}.")
            )
        return results

    def _describe(self, sobject: str, cache: dict[str, Mapping[str, Any]]) -> Mapping[str, Any]:
        if sobject not in cache:
            answer = self._call(
                f"describe {sobject}", lambda sf: sf.restful(f"sobjects/{sobject}/describe")
            )
            cache[sobject] = answer if isinstance(answer, Mapping) else {}
        return cache[sobject]

    def _fields(
        self, sobject: str, cache: dict[str, Mapping[str, Any]]
    ) -> dict[str, Mapping[str, Any]]:
        described = self._describe(sobject, cache)
        return {str(f["name"]).lower(): f for f in described.get("fields") or []}

    def _createable(
        self, sobject: str, names: Iterable[str], cache: dict[str, Mapping[str, Any]]
    ) -> list[CheckResult]:
        known = self._fields(sobject, cache)
        problems = []
        for name in dict.fromkeys(names):
            found = known.get(name.lower())
            if found is None:
                problems.append(
                    CheckResult(
                        False,
                        f"{sobject}.{name} does not exist or is not visible to the integration "
                        "user.",
                    )
                )
            elif not found.get("createable"):
                problems.append(
                    CheckResult(
                        False,
                        f"{sobject}.{name} is not createable for the integration user "
                        "(field-level security or a read-only field).",
                    )
                )
        return problems

    def _check_task_fields(self, cache: dict[str, Mapping[str, Any]]) -> list[CheckResult]:
        external = self.options["external_id_field"]
        extra = list(self.options.get("task_fields", {}) or {})
        names = [*TASK_FIELDS, *([external] if external else []), *extra]
        problems = self._createable("Task", names, cache)
        known = self._fields("Task", cache)
        for field_name, required in (
            ("TaskSubtype", ("Call",)),
            ("CallType", ("Inbound", "Outbound")),
            ("Type", ("Call",)),
        ):
            found = known.get(field_name.lower())
            if found is None:
                continue
            active = {p.get("value") for p in found.get("picklistValues") or [] if p.get("active")}
            missing = [value for value in required if value not in active]
            if missing and (field_name != "Type" or found.get("restrictedPicklist")):
                problems.append(
                    CheckResult(
                        False,
                        f"Task.{field_name} lacks the active picklist value(s) "
                        f"{', '.join(missing)}.",
                    )
                )
        if external and (found := known.get(external.lower())) and not found.get("externalId"):
            problems.append(CheckResult(False, f"Task.{external} is not an External ID field."))
        if problems:
            return problems
        return [CheckResult(True, f"Task fields ready: {', '.join(names)}.")]

    def _check_task_values(self, cache: dict[str, Mapping[str, Any]]) -> list[CheckResult]:
        values = self._task_statuses()
        priorities = self._task_priorities()
        known = self._fields("Task", cache)
        problems = []
        for field_name, wanted in (
            ("Status", (values.closed_status, values.open_status)),
            ("Priority", tuple(priorities.values())),
        ):
            found = known.get(field_name.lower())
            active = {p.get("value") for p in (found or {}).get("picklistValues") or []}
            missing = [value for value in wanted if active and value not in active]
            if missing:
                problems.append(
                    CheckResult(
                        False, f"Task.{field_name} lacks the org value(s) {', '.join(missing)}."
                    )
                )
        if problems:
            return problems
        return [
            CheckResult(
                True,
                f"Call Tasks get Status {values.closed_status!r}, follow-ups "
                f"{values.open_status!r} and Priority low/normal/high = "
                f"{priorities['low']!r}/{priorities['normal']!r}/{priorities['high']!r}.",
            )
        ]

    def _check_search(self, cache: dict[str, Mapping[str, Any]]) -> list[CheckResult]:
        types = self._object_types(())
        match_field = self.options["match_field"]
        problems: list[CheckResult] = []
        for object_type in types:
            sobject = _SOBJECTS[object_type]
            known = self._fields(sobject, cache)
            wanted = list(_RETURNING_FIELDS[object_type])
            if object_type == "account" and self._person_accounts:
                wanted += _PERSON_ACCOUNT_FIELDS
            for name in wanted:
                if name.lower() not in known:
                    problems.append(
                        CheckResult(False, f"{sobject}.{name} (searched) is not visible.")
                    )
            if match_field:
                found = known.get(match_field.lower())
                if found is None:
                    problems.append(
                        CheckResult(False, f"{sobject}.{match_field} (match_field) does not exist.")
                    )
                elif not found.get("filterable"):
                    problems.append(
                        CheckResult(False, f"{sobject}.{match_field} cannot be used in a filter.")
                    )
        lead_problems = self._createable("Lead", ("LastName", "Company", "Phone"), cache)
        for problem in lead_problems:
            problems.append(
                CheckResult(False, f"{problem.message} (needed to create leads for new callers)")
            )
        if problems:
            return problems
        how = f"SOQL on {match_field}" if match_field else "SOSL in phone fields"
        return [CheckResult(True, f"Phone search ready ({how}: {', '.join(types)}).")]

    def _check_notes(self, cache: dict[str, Mapping[str, Any]]) -> list[CheckResult]:
        problems = self._createable("ContentNote", ("Title", "Content"), cache)
        problems += self._createable(
            "ContentDocumentLink", ("ContentDocumentId", "LinkedEntityId", "ShareType"), cache
        )
        if problems:
            return [
                CheckResult(False, f"{p.message} (needed for text that does not fit the Task)")
                for p in problems
            ]
        return [CheckResult(True, "Enhanced Notes can be created for text that does not fit.")]

    def _check_case(self, cache: dict[str, Mapping[str, Any]]) -> list[CheckResult]:
        case = self.options["case"]
        if not case:
            return []
        names = ["Subject", "Description", "Origin", "ContactId", "AccountId", "SuppliedPhone"]
        names += ["Status"] if case["status"] else []
        names += ["RecordTypeId"] if case["record_type"] else []
        problems = self._createable("Case", names, cache)
        known = self._fields("Case", cache)
        for field_name, value in (("Origin", case["origin"]), ("Status", case["status"])):
            found = known.get(field_name.lower())
            if value and found is not None:
                active = {
                    p.get("value") for p in found.get("picklistValues") or [] if p.get("active")
                }
                if active and value not in active:
                    problems.append(
                        CheckResult(False, f"Case.{field_name} has no active value {value!r}.")
                    )
        if problems:
            return problems
        return [CheckResult(True, f"Cases can be created for channels {case['channels']}.")]

    def _check_owners(self, cache: dict[str, Mapping[str, Any]]) -> list[CheckResult]:
        owners: Mapping[str, str] = self.options["owners"]
        if not owners:
            return []
        ids = sorted({v for v in owners.values() if _is_sf_id(v)})
        emails = sorted({v.lower() for v in owners.values() if not _is_sf_id(v)})
        conditions = []
        if ids:
            conditions.append(f"Id IN ({', '.join(map(_soql_string, ids))})")
        if emails:
            conditions.append(f"Email IN ({', '.join(map(_soql_string, emails))})")
        rows = self._query(
            _select("Id, Email, IsActive", "User", " OR ".join(conditions)),
            "owner check",
        )
        by_id = {str(r["Id"])[:15]: r for r in rows}
        by_email = {str(r.get("Email") or "").lower(): r for r in rows}
        problems = []
        for user, owner in sorted(owners.items()):
            found = by_id.get(owner[:15]) if _is_sf_id(owner) else by_email.get(owner.lower())
            shown = owner if _is_sf_id(owner) else "the mapped e-mail address"
            if found is None:
                problems.append(
                    CheckResult(False, f"Owner of sipgate user {user}: no Salesforce User {shown}.")
                )
            elif not found.get("IsActive"):
                problems.append(
                    CheckResult(
                        False, f"Owner of sipgate user {user}: User {found['Id']} is inactive."
                    )
                )
        if problems:
            return problems
        return [CheckResult(True, f"All {len(owners)} mapped owners are active Salesforce Users.")]

    def close(self) -> None:
        """Close the HTTP connections."""
        self.session.close()


def _picklist_value(row: Mapping[str, Any]) -> str:
    """The value stored in Task.Status/Priority for a TaskStatus/TaskPriority row."""
    return str(row.get("ApiName") or row.get("MasterLabel") or "")
