"""The one place where requests to a CRM and waits for its request budget are counted.

Every request a target sends to its CRM goes through `observe_request`: `HttpClient` and the
Salesforce client through `TimeoutHTTPAdapter` (one observation per request that ``requests``
sends), the HubSpot client around each urllib3 request of the SDK. It counts the request in
``sipgate_crm_crm_requests_total{target,status}`` (status: the HTTP status code, or ``timeout``
/ ``connection_error`` when no answer came) and times it in
``sipgate_crm_crm_request_duration_seconds{target}``. `RateLimiter` reports the time it made a
request wait for a slot with `record_rate_limit_wait`. Labels are target names and statuses only:
never a number, a name or a call id.

The metric families are imported on first use, not with this module: in multiprocess mode
prometheus-client must not be imported before the process has chosen its metrics directory.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

import requests
import urllib3.exceptions

__all__ = [
    "CONNECTION_ERROR",
    "TIMEOUT",
    "Observation",
    "failure_status",
    "observe_request",
    "record_rate_limit_wait",
]

#: The status of a request that got no answer in time.
TIMEOUT: Final = "timeout"
#: The status of a request that got no answer for any other reason (refused, reset, TLS, …).
CONNECTION_ERROR: Final = "connection_error"

_TIMEOUTS: Final = (
    requests.Timeout,
    urllib3.exceptions.TimeoutError,
    socket.timeout,
    TimeoutError,
)


def failure_status(exc: BaseException) -> str:
    """The status label of a request that raised `exc` instead of answering."""
    reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
    if isinstance(reason, urllib3.exceptions.NewConnectionError):  # a ConnectTimeoutError too
        return CONNECTION_ERROR
    return TIMEOUT if isinstance(reason, _TIMEOUTS) else CONNECTION_ERROR


@dataclass
class Observation:
    """One request being observed: set `status` to the answer's HTTP status once it is known."""

    status: int | None = None


@contextmanager
def observe_request(target: str) -> Iterator[Observation]:
    """Count and time the one request sent inside the block as a request of `target`.

    Set ``status`` on the yielded `Observation` when the answer arrives; a block that raises
    before that counts as ``timeout`` or ``connection_error`` (`failure_status`), one that
    ends without a status as ``connection_error``. The exception is passed on unchanged.
    """
    observation = Observation()
    started = time.perf_counter()
    label: str | None = None
    try:
        yield observation
    except BaseException as exc:
        if observation.status is None:
            label = failure_status(exc)
        raise
    finally:
        from connector.metrics.families import CRM_REQUEST_SECONDS, CRM_REQUESTS

        status = str(observation.status) if observation.status is not None else label
        CRM_REQUESTS.labels(target=target, status=status or CONNECTION_ERROR).inc()
        CRM_REQUEST_SECONDS.labels(target=target).observe(time.perf_counter() - started)


def record_rate_limit_wait(target: str, seconds: float) -> None:
    """Count one request of `target` that waited `seconds` for a slot of its request budget."""
    from connector.metrics.families import RATE_LIMIT_WAIT_SECONDS, RATE_LIMIT_WAITS

    RATE_LIMIT_WAITS.labels(target=target).inc()
    RATE_LIMIT_WAIT_SECONDS.labels(target=target).inc(max(seconds, 0.0))
