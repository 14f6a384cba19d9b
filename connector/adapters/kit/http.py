"""HTTP for CRM adapters: a session with default timeouts, and a declared error policy.

An adapter states how its CRM answers in an `HttpPolicy` (which credential a 401 means, which
statuses are permanent, where the rate-limit reset is, what a used-up daily limit looks like) and
sends every request through `HttpClient`, which turns each failure into the pipeline's error:

* 401 and 403: `Rejected` (a `PermanentError`) naming the credential option (and the missing
  scopes, if the CRM says which);
* 404, 409 and other 4xx: `Rejected` (a status can be declared otherwise in `statuses`, or
  retryable with its own wait rule in `waits`; an error code in the body in `codes`);
* 408, 425, 429 and 5xx: `RetryableError` with the wait of ``Retry-After`` (seconds or an HTTP
  date) or of a reset header; a daily limit (`HttpPolicy.daily_limit`) parks the target
  (`TargetParked`), and so does a wait longer than a status's `Wait.park_after`;
* connection errors and timeouts: `RetryableError`, or `OutcomeUnknown` when a write that is not
  idempotent (POST, PATCH) may have reached the CRM, and so may 408 and 5xx answers to it.

Every message is scrubbed (`scrub`) of personal data, the request's credentials included, and
`HttpClient` takes a slot of the shared `RateLimiter` for every request when it has one. Adapters
on an SDK call `HttpPolicy.classify` themselves, so there is one classification. Every request
`HttpClient` sends is counted for its target in the CRM request metrics (`observe_request`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any, Final

import requests
from requests.adapters import HTTPAdapter

from connector.adapters.kit.errors import (
    AdapterError,
    OutcomeUnknown,
    PermanentError,
    RetryableError,
    TargetParked,
)
from connector.adapters.kit.observe import observe_request
from connector.adapters.kit.ratelimit import RateLimiter
from connector.adapters.kit.scrub import scrub

__all__ = [
    "Failure",
    "HttpClient",
    "HttpPolicy",
    "Rejected",
    "TimeoutHTTPAdapter",
    "Wait",
    "retry_after",
]

#: Methods whose repetition does no harm: a lost answer to them is a plain retry.
IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: The shape of a request id kept in messages (`HttpPolicy.reference`): never personal data.
_UUID: Final = re.compile(
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
)
#: Values of a reset header above this are epoch seconds, below it seconds to wait.
_EPOCH_THRESHOLD: Final = 1_000_000_000


class Failure(Enum):
    """What an error status means: try again later, or never."""

    RETRY = "retry"
    PERMANENT = "permanent"


class Rejected(PermanentError):
    """The CRM refused a request with an error answer that retrying cannot fix.

    `status` is the HTTP status and `body` the decoded error body (``None`` when unreadable),
    for adapters that branch on them (a 404 in a check, an error code in the body); the
    message never repeats the body's free text.
    """

    def __init__(self, message: str, *, status: int, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Wait:
    """How long a retryable answer waits: the answer's own wait (``Retry-After``, reset
    headers) or else `default` (the policy's `HttpPolicy.default_wait` when ``None``), at least
    `minimum`; an answer asking for more than `park_after` seconds parks the whole target."""

    default: float | None = None
    minimum: float = 0.0
    park_after: float | None = None


def retry_after(
    headers: Mapping[str, str], now: datetime, names: Sequence[str] = ()
) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date, RFC 9110) or else the
    first of the reset headers `names` (seconds to wait, or epoch seconds); ``None`` if none."""
    value = _header(headers, "Retry-After")
    if value is not None:
        seconds = _seconds(value)
        if seconds is not None:
            return seconds
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            moment = None
        if moment is not None:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return max(0.0, (moment - now).total_seconds())
    for name in names:
        seconds = _seconds(_header(headers, name))
        if seconds is not None:
            return max(0.0, seconds - now.timestamp()) if seconds > _EPOCH_THRESHOLD else seconds
    return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Header `name`, case-insensitive whatever mapping `headers` is."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return None if value is None else str(value).strip()


def _seconds(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


@dataclass(frozen=True)
class HttpPolicy:
    """How one CRM's HTTP answers map to the pipeline's errors; declared once per adapter.

    `service` names the CRM in messages, `credential` the option a 401 means (e.g.
    ``api_token``). `statuses` overrides the meaning of single statuses (e.g. ``{409:
    Failure.RETRY}``); `waits` makes statuses retryable with their own `Wait` (e.g. ``{423:
    Wait(minimum=2.0)}``, also for 429 and 5xx). `code` reads the CRM's error code out of a
    decoded body and `codes` gives codes a meaning that beats the status's (e.g. a lock
    conflict answered with 400 is retryable; a `Wait` is retryable with that wait).
    `reset_headers` are read for the wait when ``Retry-After`` is missing; a header of
    `remaining_headers` that reads ``0`` means its window (the value, in seconds) is used up.
    `default_wait` is the wait of a retryable answer that names none (``None``: the pipeline's
    backoff).
    `daily_limit` tells from the headers and decoded body of an answer with one of the
    `limit_statuses` (429 unless told) whether a daily allocation is used up: then the target
    is parked for the announced wait (at least `park_seconds`), or until `parked_until(now)`
    says (with the reason for the message).
    `scopes` reads the missing scopes out of a 403's body, `detail` a safe detail (an error
    code) out of any error body; both are scrubbed. `reference` reads the CRM's id of the
    request (a correlation id for its support) out of headers and body: it is kept in the
    message when it has the shape of a UUID. `timeout` is (connect, read) in seconds.
    """

    service: str
    credential: str = "credentials"
    statuses: Mapping[int, Failure] = field(default_factory=dict)
    waits: Mapping[int, Wait] = field(default_factory=dict)
    code: Callable[[Any], str] | None = None
    codes: Mapping[str, Failure | Wait] = field(default_factory=dict)
    reset_headers: tuple[str, ...] = ("X-RateLimit-Reset", "RateLimit-Reset")
    remaining_headers: Mapping[str, float] = field(default_factory=dict)
    daily_limit: Callable[[Mapping[str, str], Any], bool] | None = None
    limit_statuses: tuple[int, ...] = (429,)
    park_seconds: float = 3600.0
    parked_until: Callable[[datetime], tuple[datetime, str]] | None = None
    scopes: Callable[[Any], Sequence[str]] | None = None
    detail: Callable[[Any], str] | None = None
    reference: Callable[[Mapping[str, str], Any], str] | None = None
    default_wait: float | None = 30.0
    timeout: tuple[float, float] = (5.0, 30.0)

    def classify(
        self,
        status: int,
        headers: Mapping[str, str],
        body: Any,
        *,
        method: str,
        operation: str,
        now: datetime,
        secrets: Collection[str] = (),
    ) -> AdapterError:
        """The error for an answer `status` (with `headers` and decoded `body`) to `operation`.

        Statuses and codes that may mean "applied all the same" (408, 5xx) give
        `OutcomeUnknown` for methods that are not idempotent.
        """
        text = f"{self.service} {operation}: HTTP {status}"
        details = [scrub(self.detail(body), secrets)] if self.detail is not None else []
        reference = self.reference(headers, body) if self.reference is not None else ""
        if _UUID.fullmatch(reference):
            details.append(f"correlation id {reference}")
        if any(details):
            text += f" ({'; '.join(d for d in details if d)})"
        wait = retry_after(headers, now, self.reset_headers)
        if wait is None:
            wait = self._window_wait(headers)
        daily = self.daily_limit is not None and status in self.limit_statuses
        if daily and self.daily_limit is not None and self.daily_limit(headers, body):
            return self._parked(text, wait, now)
        code = self.code(body) if self.code is not None else ""
        declared = self.codes.get(code) if code else None
        rule = declared if isinstance(declared, Wait) else self.waits.get(status)
        meaning = Failure.RETRY if isinstance(declared, Wait) else declared
        meaning = meaning or self.statuses.get(status)
        if meaning is Failure.PERMANENT:
            return Rejected(text, status=status, body=body)
        if (
            meaning is Failure.RETRY
            or rule is not None
            or status in (408, 425, 429)
            or status >= 500
        ):
            return self._retry(text, status, wait, rule or Wait(), method, now)
        if status == 401:
            return Rejected(
                f"{text}: {self.service} rejected the {self.credential}; check the target's "
                f"{self.credential} option.",
                status=status,
                body=body,
            )
        if status == 403:
            named = [scrub(s, secrets) for s in self.scopes(body)] if self.scopes else []
            missing = f": missing {', '.join(named)}" if named else ""
            return Rejected(
                f"{text}: the {self.credential} lacks a permission for this{missing}.",
                status=status,
                body=body,
            )
        return Rejected(text, status=status, body=body)

    def _window_wait(self, headers: Mapping[str, str]) -> float | None:
        """The window of the first `remaining_headers` header that reads 0 (used up)."""
        for name, window in self.remaining_headers.items():
            if _seconds(_header(headers, name)) == 0:
                return window
        return None

    def _parked(self, text: str, wait: float | None, now: datetime) -> TargetParked:
        if self.parked_until is not None:
            until, reason = self.parked_until(now)
            return TargetParked(
                f"{text}: the daily request limit is used up; {reason}.", until=until
            )
        seconds = max(wait or 0.0, self.park_seconds)
        return TargetParked(
            f"{text}: the daily request limit is used up.", until=now + timedelta(seconds=seconds)
        )

    def _retry(
        self, text: str, status: int, wait: float | None, rule: Wait, method: str, now: datetime
    ) -> RetryableError:
        if wait is None:
            wait = rule.default if rule.default is not None else self.default_wait
        if wait is not None:
            wait = max(wait, rule.minimum)
        if rule.park_after is not None and wait is not None and wait > rule.park_after:
            return TargetParked(
                f"{text}: {self.service} asks to wait {wait:.0f} s.",
                until=now + timedelta(seconds=wait),
            )
        if status == 429:
            text += ": the rate limit is reached"
        may_be_applied = (status == 408 or status >= 500) and method not in IDEMPOTENT_METHODS
        error = OutcomeUnknown if may_be_applied else RetryableError
        return error(text, retry_after=wait)

    def transport_error(
        self, exc: requests.RequestException, *, method: str, operation: str
    ) -> RetryableError:
        """The error for a request that got no answer: `OutcomeUnknown` when a write that is not
        idempotent may have arrived (everything but a failed connect)."""
        text = f"{self.service} {operation}: {type(exc).__name__}"
        if isinstance(exc, requests.ConnectTimeout) or method in IDEMPOTENT_METHODS:
            return RetryableError(text)
        if isinstance(exc, requests.ConnectionError) and _never_connected(exc):
            return RetryableError(f"{text} (not sent)")
        return OutcomeUnknown(f"{text} (outcome unknown)")


def _never_connected(exc: requests.ConnectionError) -> bool:
    """Whether the connection failed before anything was sent (refused, name not resolved)."""
    text = str(exc)
    return any(mark in text for mark in ("Connection refused", "NewConnectionError", "resolve"))


class TimeoutHTTPAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` that gives every request a default timeout and never retries.

    With a `target` every request it sends is counted and timed as a request of that target
    (`observe_request`): its status code, or ``timeout`` / ``connection_error``.
    """

    def __init__(self, timeout: float | tuple[float, float], *, target: str | None = None) -> None:
        super().__init__(max_retries=0)
        self.timeout = timeout
        self.target = target

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
        if self.target is None:
            return self._send(request, stream, timeout, verify, cert, proxies)
        with observe_request(self.target) as observation:
            response = self._send(request, stream, timeout, verify, cert, proxies)
            observation.status = response.status_code
        return response

    def _send(
        self,
        request: requests.PreparedRequest,
        stream: bool,
        timeout: float | tuple[float, float] | tuple[float, None] | None,
        verify: bool | str,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None,
        proxies: Mapping[str, str] | None,
    ) -> requests.Response:
        return super().send(
            request,
            stream=stream,
            timeout=self.timeout if timeout is None else timeout,
            verify=verify,
            cert=cert,
            proxies=proxies,
        )


class HttpClient:
    """Requests to one CRM's API under an `HttpPolicy`; every failure is an `AdapterError`.

    `headers` go with every request (e.g. ``Authorization``); `secrets` are removed from every
    message on top of what `scrub` removes. With a `limiter`, each request takes a slot of the
    budget it names (``general`` unless told). `clock` gives "now" for ``Retry-After`` dates.
    Every request is counted and timed as a request of `target` (pass the adapter's `name`;
    without it the policy's `service` names the requests), see `observe_request`.
    """

    def __init__(
        self,
        base_url: str,
        policy: HttpPolicy,
        *,
        session: requests.Session | None = None,
        headers: Mapping[str, str] | None = None,
        secrets: Collection[str] = (),
        limiter: RateLimiter | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        target: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.policy = policy
        self.session = session or requests.Session()
        timeouts = TimeoutHTTPAdapter(policy.timeout, target=target or policy.service)
        self.session.mount("https://", timeouts)
        self.session.mount("http://", timeouts)
        self.session.headers.update(headers or {})
        self.secrets = tuple(secrets)
        self.limiter = limiter
        self.clock = clock

    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        budget: str = "general",
        missing_ok: bool = False,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        json_answer: bool = True,
    ) -> Any:
        """Send one request and return its decoded JSON body (``None`` when empty).

        With `missing_ok` a 404 answers ``None`` instead of raising. An answer that is not JSON
        counts as lost (`OutcomeUnknown` for writes that are not idempotent) unless
        `json_answer` is false: then any successful answer returns ``None``. `content` is a body
        sent byte for byte (e.g. one that was signed) instead of `json`; `headers` go with this
        request only.
        """
        method = method.upper()
        url = path if "://" in path else f"{self.base_url}/{path.lstrip('/')}"
        slot = self.limiter.acquire(budget) if self.limiter is not None else None
        try:
            response = self.session.request(
                method, url, json=json, params=params, data=content, headers=headers
            )
        except requests.RequestException as exc:
            raise self.policy.transport_error(exc, method=method, operation=operation) from exc
        finally:
            if slot is not None and self.limiter is not None:
                self.limiter.release(slot)
        body = _decoded(response)
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code >= 400:
            raise self.policy.classify(
                response.status_code,
                response.headers,
                None if body is _UNREADABLE else body,
                method=method,
                operation=operation,
                now=self.clock(),
                secrets=self.secrets,
            )
        if not json_answer:
            return None
        if body is _UNREADABLE:
            error = RetryableError if method in IDEMPOTENT_METHODS else OutcomeUnknown
            raise error(f"{self.policy.service} {operation}: unreadable answer")
        return body

    def close(self) -> None:
        """Close the session's connections."""
        self.session.close()


_UNREADABLE: Final = object()


def _decoded(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return _UNREADABLE
