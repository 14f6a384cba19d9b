"""Salesforce's errors as the pipeline's: `RetryableError`, `TargetParked` or `PermanentError`.

The statuses and error codes are declared in the kit's `HttpPolicy` (`_POLICY`), which
classifies every error answer: ``REQUEST_LIMIT_EXCEEDED`` for the daily allocation parks the
target (`REQUEST_LIMIT_PARK`), for concurrent long-running requests it is a short
`RetryableError`; lock conflicts, 5xx, timeouts and connection errors are retryable (5xx and
lost answers as `OutcomeUnknown`); other 4xx errors are permanent (the kit's `Rejected`).
Every message keeps Salesforce's error code and a scrubbed text: no echoed field values (also
not those of a DML error nested in a trigger's message) or query text, phone numbers or e-mail
addresses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError

from connector.adapters import (
    AdapterError,
    Failure,
    HttpPolicy,
    PermanentError,
    RetryableError,
    Wait,
    scrub,
)
from connector.adapters.salesforce.records import _Item

#: How long the target is parked after Salesforce refused a request for the daily allocation.
REQUEST_LIMIT_PARK: Final = timedelta(hours=1)
#: Wait after ``REQUEST_LIMIT_EXCEEDED`` for too many concurrent long-running requests.
CONCURRENT_LIMIT_RETRY_SECONDS: Final = 60.0

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
#: Error codes whose message quotes the whole query or search text (which holds the number, a
#: subject or a name): ``\nSELECT … WHERE Subject = '…'\n  ^\nERROR at Row:1:Column:80\n…``.
_QUERY_ECHOING: Final = frozenset(
    {
        "MALFORMED_QUERY",
        "MALFORMED_SEARCH",
        "INVALID_QUERY_FILTER_OPERATOR",
        "INVALID_SEARCH",
        "INVALID_FIELD",
        "INVALID_TYPE",
    }
)
#: What marks a message that quotes a query, whatever its error code.
_QUERY_ECHO_MARK: Final = "ERROR at Row:"
_QUERY_WITHHELD: Final = "(query text withheld)"
#: Parts of a query error that name only API names, kept when the rest is withheld.
_SAFE_QUERY_DETAILS: Final = (
    re.compile(r"No such column '[A-Za-z0-9_.]+' on entity '[A-Za-z0-9_]+'"),
    re.compile(r"sObject type '[A-Za-z0-9_]+' is not supported"),
    re.compile(r"Didn't understand relationship '[A-Za-z0-9_]+' in field path"),
)
#: A DML error nested in another one (an Apex trigger's ``DmlException``):
#: ``… first error: STRING_TOO_LONG, Subject: data value too large: <value>: [Subject]``.
_NESTED_ERROR_RE: Final = re.compile(r"first error: ([A-Z][A-Z0-9_]*), ", re.IGNORECASE)

_QUOTED_RE: Final = re.compile(r"\"[^\"]*\"")


def _safe_error_text(code: str, message: str) -> str:
    """Salesforce's error `message` without the values it may echo: no query text (codes in
    `_QUERY_ECHOING` or any message with ``ERROR at Row:``; only the names of a missing column
    or object are kept), no value after ``Label: reason`` (codes in `_VALUE_ECHOING`, also when
    nested in a trigger's ``first error:``), then scrubbed (the kit's `scrub`)."""
    return scrub(_without_values(code, message))


def _without_values(code: str, message: str) -> str:
    if code.upper() in _QUERY_ECHOING or _QUERY_ECHO_MARK in message:
        details = [m.group(0) for p in _SAFE_QUERY_DETAILS if (m := p.search(message))]
        return " ".join([_QUERY_WITHHELD, *details[:1]])
    nested = _NESTED_ERROR_RE.search(message)
    if nested:
        inner = message[nested.end() :]
        return message[: nested.end()] + _without_values(nested.group(1), inner)
    if code.upper() in _VALUE_ECHOING:
        parts = message.split(": ", 2)
        if len(parts) == 3:
            message = f"{parts[0]}: {parts[1]}"
    if code == "JSON_PARSER_ERROR":
        message = _QUOTED_RE.sub("…", message)
    return message


def _error_of(content: Any) -> tuple[str, str]:
    """(errorCode, message) of a REST error body (``[{"errorCode", "message"}]``)."""
    first = content[0] if isinstance(content, list) and content else content
    if isinstance(first, Mapping):
        code = str(first.get("errorCode") or first.get("statusCode") or "")
        return code, str(first.get("message") or "")
    return "", ""


# --- mapping ---------------------------------------------------------------------------------


def _code(content: Any) -> str:
    return _error_of(content)[0]


def _detail(content: Any) -> str:
    """``CODE: text`` of an error body, the text without the values it may echo."""
    code, message = _error_of(content)
    safe = _safe_error_text(code, message) if message else ""
    return f"{code}: {safe}" if code and safe else code or safe


def _daily_limit(headers: Mapping[str, str], content: Any) -> bool:
    """``REQUEST_LIMIT_EXCEEDED`` for the org's daily allocation (not for concurrent requests)."""
    code, message = _error_of(content)
    return code == "REQUEST_LIMIT_EXCEEDED" and "concurrent" not in message.lower()


#: How Salesforce's error answers map to the pipeline's errors (the kit classifies them):
#: record error codes a later attempt can overcome are retryable whatever the status, a
#: ``REQUEST_LIMIT_EXCEEDED`` that is no daily limit (concurrent long-running requests) waits a
#: minute, the daily one parks the target. Every request counts as a write that may have arrived.
_POLICY: Final = HttpPolicy(
    "Salesforce",
    credential="auth",
    code=_code,
    codes={
        **dict.fromkeys(_RETRYABLE_CODES, Failure.RETRY),
        "REQUEST_LIMIT_EXCEEDED": Wait(default=CONCURRENT_LIMIT_RETRY_SECONDS),
    },
    reset_headers=(),
    daily_limit=_daily_limit,
    limit_statuses=(403,),
    park_seconds=REQUEST_LIMIT_PARK.total_seconds(),
    detail=_detail,
    default_wait=None,
)


def _translate(exc: Exception, what: str, sf: Salesforce | None) -> AdapterError:
    """The pipeline's error for a failed request (`sf`: the client, for its last API usage)."""
    if isinstance(exc, requests.RequestException):
        return _POLICY.transport_error(exc, method="POST", operation=what)
    if isinstance(exc, SalesforceError):
        return _status_error(int(exc.status), exc.content, what, sf)
    return RetryableError(f"Salesforce {what}: unreadable answer ({type(exc).__name__})")


def _status_error(status: int, content: Any, what: str, sf: Salesforce | None) -> AdapterError:
    """The pipeline's error for an HTTP `status` with Salesforce's error body `content`."""
    policy = replace(_POLICY, parked_until=lambda now: _parked_until(now, sf))
    return policy.classify(
        status, {}, content, method="POST", operation=what, now=datetime.now(UTC)
    )


def _parked_until(now: datetime, sf: Salesforce | None) -> tuple[datetime, str]:
    usage = ""
    known = sf.api_usage.get("api-usage") if sf is not None else None
    if known is not None:
        usage = f" (last seen usage {known.used}/{known.total})"
    minutes = int(REQUEST_LIMIT_PARK.total_seconds() // 60)
    return now + REQUEST_LIMIT_PARK, (
        f"Salesforce counts the org's API requests of the last 24 hours{usage}, so this target "
        f"pauses {minutes} minutes at a time"
    )


def _record_failures(
    failures: Sequence[tuple[_Item, Sequence[Mapping[str, Any]]]], total: int
) -> AdapterError:
    """One error for the records a collection request could not write: permanent unless every
    error code is retryable (`_RETRYABLE_CODES`)."""
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
