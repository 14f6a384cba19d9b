"""HubSpot's error answers as the pipeline's errors: retry later, park the target, or give up.

429s with policy ``DAILY`` park the target until midnight in the portal's time zone; other 429s
are retried after the wait HubSpot's headers name; 401, 403 (naming missing scopes) and other
4xx are permanent (`_Rejected`); 5xx may or may not have been applied (`_OutcomeUnknown`).
HubSpot's messages are passed on without e-mail addresses and with digit runs masked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from typing import Any
from zoneinfo import ZoneInfo

from connector.adapters.base import AdapterError, Memo, PermanentError, RetryableError, TargetParked
from connector.adapters.hubspot.values import _iso, _parse_time
from connector.logs import mask_number
from connector.render import truncate_to

_DAILY_MEMO = "hubspot:daily-limit-reset"


class _OutcomeUnknown(RetryableError):
    """The request may have been applied or not (timeout or 5xx after sending)."""


class _Rejected(PermanentError):
    """HubSpot answered with a 4xx the request cannot get past; `status`/`info` tell which."""

    def __init__(self, message: str, status: int, info: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.status = status
        self.info = dict(info)


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


def _http_error(
    status: int,
    body: Any,
    exc: Exception,
    operation: str,
    kind: str,
    daily_limit: Callable[[], TargetParked],
) -> AdapterError:
    """The error for HubSpot's answer `status`/`body` to `operation` (a ``kind`` request);
    `daily_limit` gives the parking for a used-up daily limit (it consults the memo)."""
    info = _body_json(body)
    headers = getattr(exc, "headers", None)
    category = str(info.get("category") or info.get("errorType") or "")
    if status == 429:
        policy = info.get("policyName")
        if policy == "DAILY":
            return daily_limit()
        wait = _seconds(_header(headers, "Retry-After"))
        if wait is None:
            wait = _rate_limit_wait(headers, kind)
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


def _rate_limit_wait(headers: Any, kind: str) -> float:
    if kind == "search":
        return 1.0  # searches: 5 per second; their 429s carry no headers
    if _header(headers, "X-HubSpot-RateLimit-Secondly-Remaining") == "0":
        return 1.0
    interval = _seconds(_header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds"))
    return interval / 1000 if interval else 10.0


def _daily_limit_parked(memo: Memo, now: datetime, zone: ZoneInfo) -> TargetParked:
    """Park the target until the portal's next midnight in `zone` (or an hour, see the
    package docstring); `memo` remembers the expected reset."""
    previous = _parse_time(memo.get(_DAILY_MEMO))
    if previous is not None and previous <= now < previous + timedelta(days=1):
        until = now + timedelta(hours=1)
        reason = "still used up after the expected reset; trying again hourly"
    else:
        local = now.astimezone(zone)
        midnight = datetime.combine(local.date() + timedelta(days=1), day_time(0), tzinfo=zone)
        until = midnight.astimezone(UTC) + timedelta(minutes=1)
        memo.set(_DAILY_MEMO, _iso(until))
        reason = f"it resets at midnight ({zone.key})"
    return TargetParked(f"HubSpot's daily API limit is used up; {reason}.", until=until)
