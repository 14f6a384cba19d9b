"""Zendesk's Support API v2 through the kit's `HttpClient`, and how its answers map to errors.

Auth is HTTP Basic ``{email}/token:{api_token}``. Under `POLICY`: 401 and 403 are permanent and
name the ``api_token``; 404, 409, 422 and other 4xx are permanent; 429 (Zendesk sends
``Retry-After`` in seconds) and 5xx are retried after the announced wait. Of Zendesk's error
bodies (``{"error": …, "description": …, "details": {field: [{"error": …, "description": …}]}}``)
only the error code and, for 422, the field names with their error codes are passed on: the
descriptions quote the values sent (names, numbers, e-mail addresses).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

import requests

from connector.adapters import Budget, HttpClient, HttpPolicy, RateLimiter, open_store
from connector.adapters.zendesk.options import ZendeskOptions

__all__ = ["POLICY", "error_detail", "http_client", "rate_limiter"]

#: Identifier-like values (error codes, field names): everything else of an error body is text.
_IDENTIFIER: Final = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,79}")


def _identifiers(values: Any) -> list[str]:
    return [v for v in values if isinstance(v, str) and _IDENTIFIER.fullmatch(v)]


def error_detail(body: Any) -> str:
    """The safe part of a Zendesk error body: ``RecordInvalid: requester (BlankValue)``."""
    if not isinstance(body, Mapping):
        return ""
    error = body.get("error")
    code = error.get("title") if isinstance(error, Mapping) else error
    parts = _identifiers([code])
    details = body.get("details")
    named: list[str] = []
    if isinstance(details, Mapping):
        for name, problems in details.items():
            if not _identifiers([name]):
                continue
            listed = problems if isinstance(problems, list) else []
            codes = _identifiers(p.get("error") for p in listed if isinstance(p, Mapping))
            named.append(f"{name} ({', '.join(dict.fromkeys(codes))})" if codes else name)
    return ": ".join([*parts[:1], ", ".join(named)] if named else parts[:1])


POLICY: Final = HttpPolicy(
    service="Zendesk",
    credential="api_token",
    reset_headers=("ratelimit-reset", "X-Rate-Limit-Reset"),
    detail=error_detail,
)


def rate_limiter(options: ZendeskOptions) -> RateLimiter:
    """The limiter of ``requests_per_minute``, shared by every adapter with this token at
    this account (through ``rate_limit_store`` also across processes)."""
    credential = hashlib.sha256(f"{options.base_url}|{options.email}|{options.api_token}".encode())
    return RateLimiter(
        {"general": Budget(options.requests_per_minute, 60.0)},
        open_store(options.rate_limit_store),
        namespace=f"zendesk:{credential.hexdigest()[:16]}",
        in_flight_seconds=options.connect_timeout + options.read_timeout + 1.0,
    )


def http_client(
    name: str,
    options: ZendeskOptions,
    limiter: RateLimiter | None = None,
    session: requests.Session | None = None,
) -> HttpClient:
    """The client of target `name`: Basic auth, the timeouts of the options, `POLICY`; its
    requests are counted and timed under `name`."""
    session = session or requests.Session()
    session.auth = (f"{options.email}/token", options.api_token)
    session.headers["Accept"] = "application/json"
    policy = replace(POLICY, timeout=(options.connect_timeout, options.read_timeout))
    return HttpClient(
        options.base_url,
        policy,
        session=session,
        secrets=(options.api_token, options.email),
        limiter=limiter if limiter is not None else rate_limiter(options),
        target=name,
    )
