"""HubSpot's error answers as the pipeline's errors, declared as the kit's `HttpPolicy`.

`http_policies` states what HubSpot's statuses mean and the kit's `HttpPolicy.classify` turns
each answer into the error: 429s with policy ``DAILY`` park the target until midnight in the
portal's time zone (`_daily_limit_parked`); other 429s are retried after the wait HubSpot's
headers name (Retry-After, a used-up secondly window) or 10 s (searches: 1 s); 423 (Locked:
"wait at least 2 seconds") and 477 (Migration in Progress, parked when its Retry-After is long)
are retried; 401, 403 (naming missing scopes) and other 4xx are permanent (the kit's
`Rejected`, with HubSpot's decoded error body); 408 and 5xx may have been applied
(`OutcomeUnknown`).

Errors end up in the ledger and in logs, so HubSpot's free-text messages (which quote the values
sent: names, numbers, e-mail addresses) are never passed on: only HubSpot's category, error
codes, property names, context keys and correlation id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from typing import Any, Final
from zoneinfo import ZoneInfo

from connector.adapters import HttpPolicy, Memo, Wait
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


#: What may be passed on of HubSpot's error bodies: identifiers (categories, error codes,
#: property names, context keys, correlation ids), never free text or values.
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,99}")


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
    error codes), the other errors' codes and the context keys.

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
    return "; ".join(parts)


def _category(info: Mapping[str, Any]) -> str:
    category = str(info.get("category") or info.get("errorType") or "")
    return category if _TOKEN.fullmatch(category) else ""


def _detail(info: Any) -> str:
    """What an error body may tell: category, rate-limit policy, then `_safe_message`."""
    if not isinstance(info, Mapping):
        return ""
    policy = info.get("policyName")
    parts = [_category(info), policy if isinstance(policy, str) else ""]
    return "; ".join(part for part in [*_tokens(parts), _safe_message(info)] if part)


def _correlation_id(headers: Mapping[str, str], info: Any) -> str:
    """HubSpot's id of the request, from the body or the ``X-HubSpot-Correlation-Id`` header."""
    found = info.get("correlationId") if isinstance(info, Mapping) else None
    if not isinstance(found, str):
        found = headers.get("X-HubSpot-Correlation-Id") or ""
    return str(found)


def _scopes(info: Any) -> list[str]:
    return _missing_scopes(info) if isinstance(info, Mapping) else []


def _daily(headers: Mapping[str, str], info: Any) -> bool:
    """A 429 whose policy is ``DAILY``: the portal's daily allocation is used up."""
    return isinstance(info, Mapping) and info.get("policyName") == "DAILY"


#: Waits of HubSpot's temporary answers: 429 after Retry-After or 10 s (the rolling window);
#: 423 Locked: "wait at least 2 seconds"; 477 Migration in Progress: Retry-After or 60 s, and a
#: longer migration parks the whole target.
_WAITS: Final = {
    429: Wait(default=10.0),
    423: Wait(default=_LOCKED_WAIT, minimum=_LOCKED_WAIT),
    477: Wait(default=_MIGRATION_WAIT, park_after=_MIGRATION_PARK_AFTER),
}


def http_policies(
    parked_until: Callable[[datetime], tuple[datetime, str]],
) -> dict[str, HttpPolicy]:
    """How HubSpot's answers map to the pipeline's errors, per request budget (``general``,
    ``search``: search 429s carry no headers, a second is their window). `parked_until` says
    until when a used-up daily limit parks the target, and why then."""
    general = HttpPolicy(
        service="HubSpot",
        credential="access token",
        waits=_WAITS,
        reset_headers=(),
        remaining_headers={"X-HubSpot-RateLimit-Secondly-Remaining": 1.0},
        daily_limit=_daily,
        parked_until=parked_until,
        scopes=_scopes,
        detail=_detail,
        reference=_correlation_id,
        default_wait=None,
    )
    return {"general": general, "search": replace(general, waits={**_WAITS, 429: Wait(1.0)})}


def _daily_limit_parked(memo: Memo, now: datetime, zone: ZoneInfo) -> tuple[datetime, str]:
    """Until when the target is parked (the portal's next midnight in `zone`) and why; `memo`
    remembers that expected reset. Only a 429 ``DAILY`` shortly after the expected reset
    (within `_RESET_GRACE`) means the reset has not happened yet (the portal's zone is not
    `zone`): then the target is parked an hour at a time, each hour the next expected reset. A
    429 ``DAILY`` later than that means the limit was used up anew after a reset."""
    previous = _parse_time(memo.get(_DAILY_MEMO))
    if previous is not None and previous <= now < previous + _RESET_GRACE:
        until = now + timedelta(hours=1)
        memo.set(_DAILY_MEMO, _iso(until))
        return until, "still used up after the expected reset; trying again hourly"
    local = now.astimezone(zone)
    midnight = datetime.combine(local.date() + timedelta(days=1), day_time(0), tzinfo=zone)
    until = midnight.astimezone(UTC) + timedelta(minutes=1)
    memo.set(_DAILY_MEMO, _iso(until))
    return until, f"it resets at midnight ({zone.key})"
