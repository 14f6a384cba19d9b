"""HubSpot's error answers as the pipeline's errors: retry later, park the target, or give up.

429s with policy ``DAILY`` park the target until midnight in the portal's time zone; other 429s
are retried after the wait HubSpot's headers name; 423 (Locked: "wait at least 2 seconds") and
477 (Migration in Progress, parked when its Retry-After is long) are retried; 401, 403 (naming
missing scopes) and other 4xx are permanent (`_Rejected`); 408, 5xx and answers that cannot be
read may or may not have been applied (`OutcomeUnknown`). Retry-After is read by the kit.

Errors end up in the ledger and in logs, so HubSpot's free-text messages (which quote the values
sent: names, numbers, e-mail addresses) are never passed on: only HubSpot's category, error
codes, property names, context keys and correlation id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from typing import Any
from zoneinfo import ZoneInfo

from connector.adapters import (
    AdapterError,
    Memo,
    OutcomeUnknown,
    PermanentError,
    RetryableError,
    TargetParked,
    retry_after,
)
from connector.adapters.hubspot.values import _iso, _parse_time

_DAILY_MEMO = "hubspot:daily-limit-reset"

#: A 429 ``DAILY`` this long after the expected reset is not "still used up after the reset"
#: (the portal's zone is wrong) but the limit used up again: park until the next midnight.
_RESET_GRACE = timedelta(hours=2)
#: HubSpot: "If you receive a 423 error, wait at least 2 seconds before retrying."
_LOCKED_WAIT = 2.0
#: 477 Migration in Progress without Retry-After: try again after this long.
_MIGRATION_WAIT = 60.0
#: A 477 whose Retry-After is longer parks the whole target instead of one delivery.
_MIGRATION_PARK_AFTER = 15 * 60.0


class _Rejected(PermanentError):
    """HubSpot answered with a 4xx the request cannot get past; `status`/`info` tell which."""

    def __init__(self, message: str, status: int, info: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.status = status
        self.info = dict(info)


#: What may be passed on of HubSpot's error bodies: identifiers (categories, error codes,
#: property names, context keys, correlation ids), never free text or values.
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,99}")
_CORRELATION_ID = re.compile(r"[0-9A-Fa-f-]{8,64}")


def _tokens(values: Iterable[Any]) -> list[str]:
    """The identifier-like `values` (strings only), in order, without duplicates."""
    return list(
        dict.fromkeys(v for v in values if isinstance(v, str) and _TOKEN.fullmatch(v) is not None)
    )


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
    """What HubSpot's error body names, without free text: the invalid properties (with their
    error codes), the other errors' codes, the context keys and the correlation id.

    HubSpot's messages quote the values sent (names, phone numbers, e-mail addresses, note
    text); they go to the ledger and to logs, so they are left out entirely.
    """
    properties: list[str] = []
    message = str(info.get("message") or "")
    prefix = "Property values were not valid: "
    if message.startswith(prefix):
        try:
            problems = json.loads(message.removeprefix(prefix))
        except ValueError:
            problems = []
        for problem in problems if isinstance(problems, list) else ():
            if not isinstance(problem, Mapping):
                continue
            for name in _tokens([problem.get("name")]):
                code = _tokens([problem.get("error")])
                properties.append(f"{name} ({code[0]})" if code else name)
    codes: list[Any] = []
    keys: list[Any] = []
    context = info.get("context")
    if isinstance(context, Mapping):
        keys.extend(context)
    for error in info.get("errors") or ():
        if not isinstance(error, Mapping):
            continue
        codes.append(error.get("code"))
        sub_context = error.get("context")
        if isinstance(sub_context, Mapping):
            keys.extend(sub_context)
            named = sub_context.get("propertyName")
            for name in _tokens(named if isinstance(named, list) else [named]):
                properties.append(name)
    parts: list[str] = []
    if properties:
        parts.append("properties " + ", ".join(dict.fromkeys(properties)))
    if codes := _tokens(codes):
        parts.append("codes " + ", ".join(codes))
    if keys := _tokens(sorted(str(k) for k in keys)):
        parts.append(f"[{', '.join(keys)}]")
    correlation = info.get("correlationId")
    if isinstance(correlation, str) and _CORRELATION_ID.fullmatch(correlation):
        parts.append(f"correlation id {correlation}")
    return "; ".join(parts) or "no details"


def _http_error(
    status: int,
    body: Any,
    exc: Exception,
    operation: str,
    kind: str,
    daily_limit: Callable[[], TargetParked],
    now: datetime,
) -> AdapterError:
    """The error for HubSpot's answer `status`/`body` to `operation` (a ``kind`` request) at
    `now`; `daily_limit` gives the parking for a used-up daily limit (it consults the memo)."""
    info = _body_json(body)
    headers: Mapping[str, str] = getattr(exc, "headers", None) or {}
    category = str(info.get("category") or info.get("errorType") or "")
    if _TOKEN.fullmatch(category) is None:
        category = ""
    if status == 429:
        policy = info.get("policyName")
        if policy == "DAILY":
            return daily_limit()
        wait = retry_after(headers, now, ())
        if wait is None:
            wait = _rate_limit_wait(headers, kind)
        named = policy if isinstance(policy, str) and _TOKEN.fullmatch(policy) else kind
        return RetryableError(
            f"HubSpot rate limit reached ({named}) while {operation}.", retry_after=wait
        )
    if status == 423:  # Locked: HubSpot applied nothing; "wait at least 2 seconds"
        wait = max(_LOCKED_WAIT, retry_after(headers, now, ()) or 0.0)
        return RetryableError(
            f"HubSpot is busy with the records of {operation} (423 Locked).", retry_after=wait
        )
    if status == 477:  # Migration in Progress: the portal is being moved; nothing applied
        wait = retry_after(headers, now, ())
        if wait is not None and wait > _MIGRATION_PARK_AFTER:
            return TargetParked(
                f"HubSpot is migrating the account's data (477) while {operation}.",
                until=now + timedelta(seconds=wait),
            )
        return RetryableError(
            f"HubSpot is migrating the account's data (477) while {operation}.",
            retry_after=_MIGRATION_WAIT if wait is None else wait,
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
    if status == 0:  # the SDK could not read the answer (or the connection broke)
        return OutcomeUnknown(f"HubSpot's answer to {operation} could not be read.")
    if status == 408 or status >= 500:  # may have been applied all the same
        return OutcomeUnknown(f"HubSpot failed {operation} ({status}).")
    return _Rejected(
        f"HubSpot rejected {operation} ({status} {category}): {_safe_message(info)}",
        status,
        info,
    )


def _rate_limit_wait(headers: Mapping[str, str], kind: str) -> float:
    if kind == "search":
        return 1.0  # searches: 5 per second; their 429s carry no headers
    if headers.get("X-HubSpot-RateLimit-Secondly-Remaining") == "0":
        return 1.0
    try:
        interval = float(headers.get("X-HubSpot-RateLimit-Interval-Milliseconds") or 0)
    except ValueError:
        interval = 0.0
    return interval / 1000 if interval > 0 else 10.0


def _daily_limit_parked(memo: Memo, now: datetime, zone: ZoneInfo) -> TargetParked:
    """Park the target until the portal's next midnight in `zone`; `memo` remembers that
    expected reset. Only a 429 ``DAILY`` shortly after the expected reset (within
    `_RESET_GRACE`) means the reset has not happened yet (the portal's zone is not `zone`):
    then the target is parked an hour at a time, each hour the next expected reset. A 429
    ``DAILY`` later than that means the limit was used up anew after a reset."""
    previous = _parse_time(memo.get(_DAILY_MEMO))
    if previous is not None and previous <= now < previous + _RESET_GRACE:
        until = now + timedelta(hours=1)
        memo.set(_DAILY_MEMO, _iso(until))
        reason = "still used up after the expected reset; trying again hourly"
    else:
        local = now.astimezone(zone)
        midnight = datetime.combine(local.date() + timedelta(days=1), day_time(0), tzinfo=zone)
        until = midnight.astimezone(UTC) + timedelta(minutes=1)
        memo.set(_DAILY_MEMO, _iso(until))
        reason = f"it resets at midnight ({zone.key})"
    return TargetParked(f"HubSpot's daily API limit is used up; {reason}.", until=until)
