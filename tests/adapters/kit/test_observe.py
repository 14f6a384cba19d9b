"""Counting requests to a CRM and rate-limit waits: through `HttpClient` against a local server."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import requests
import urllib3.exceptions
from prometheus_client import REGISTRY
from urllib3.exceptions import MaxRetryError

from connector.adapters import (
    Budget,
    HttpClient,
    HttpPolicy,
    OutcomeUnknown,
    PermanentError,
    RateLimiter,
    RetryableError,
    observe_request,
)
from connector.adapters.kit.observe import CONNECTION_ERROR, TIMEOUT, failure_status
from connector.adapters.kit.ratelimit import MemorySlotStore
from tests.fakes.base import ManualClock
from tests.fakes.test_base import EchoServer
from tests.support.metrics import crm_requests

POLICY = HttpPolicy(service="EchoCRM", credential="api_token", timeout=(2.0, 0.3))


def timed(target: str) -> float:
    value = REGISTRY.get_sample_value(
        "sipgate_crm_crm_request_duration_seconds_count", {"target": target}
    )
    return value or 0.0


def waits(target: str) -> tuple[float, float]:
    labels = {"target": target}
    count = REGISTRY.get_sample_value("sipgate_crm_rate_limit_waits_total", labels)
    seconds = REGISTRY.get_sample_value("sipgate_crm_rate_limit_wait_seconds_total", labels)
    return count or 0.0, seconds or 0.0


@pytest.fixture
def server() -> Iterator[EchoServer]:
    with EchoServer() as running:
        yield running


def test_answers_are_counted_by_target_and_status(server: EchoServer) -> None:
    http = HttpClient(server.url, POLICY, target="echo-statuses")
    server.fail_next(r"/limited$", 429, headers={"Retry-After": "3"})
    server.fail_next(r"/broken$", 500)
    http.request("GET", "fine", operation="reading")
    http.request("GET", "fine", operation="reading")
    with pytest.raises(RetryableError):
        http.request("GET", "limited", operation="reading")
    with pytest.raises(OutcomeUnknown):
        http.request("POST", "broken", operation="writing", json={})
    assert crm_requests("echo-statuses") == {"200": 2, "429": 1, "500": 1}
    assert timed("echo-statuses") == 4
    assert crm_requests("another-target")["200"] == 0


def test_a_timeout_and_a_refused_connection_have_their_own_status(server: EchoServer) -> None:
    http = HttpClient(server.url, POLICY, target="echo-failures")
    server.delay_after_commit(r"/slow$", 2.0)
    with pytest.raises(RetryableError):
        http.request("GET", "slow", operation="reading")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    refused = HttpClient(f"http://127.0.0.1:{closed}", POLICY, target="echo-failures")
    with pytest.raises(RetryableError):
        refused.request("GET", "anything", operation="reading")
    assert crm_requests("echo-failures")[TIMEOUT] == 1
    assert crm_requests("echo-failures")[CONNECTION_ERROR] == 1
    assert timed("echo-failures") == 2


def test_without_a_target_the_service_names_the_requests(server: EchoServer) -> None:
    before = crm_requests("EchoCRM")["404"]
    server.fail_next(r"/gone$", 404)
    with pytest.raises(PermanentError):
        HttpClient(server.url, POLICY).request("GET", "gone", operation="reading")
    assert crm_requests("EchoCRM")["404"] == before + 1


def test_observe_request_passes_the_error_on_and_counts_it() -> None:
    with pytest.raises(requests.ConnectTimeout), observe_request("sdk-target"):
        raise requests.ConnectTimeout("no answer")
    with observe_request("sdk-target") as observation:
        observation.status = 201
    assert crm_requests("sdk-target")[TIMEOUT] == 1
    assert crm_requests("sdk-target")["201"] == 1
    assert failure_status(requests.ConnectionError("reset")) == CONNECTION_ERROR
    assert failure_status(TimeoutError()) == TIMEOUT


def test_urllib3_failures_of_an_sdk_have_their_status() -> None:
    refused = urllib3.exceptions.NewConnectionError(None, "Connection refused")
    slow = urllib3.exceptions.ConnectTimeoutError(None, "connect timed out")
    assert failure_status(MaxRetryError(None, "/", refused)) == CONNECTION_ERROR
    assert failure_status(MaxRetryError(None, "/", slow)) == TIMEOUT
    assert failure_status(urllib3.exceptions.ReadTimeoutError(None, "/", "slow")) == TIMEOUT
    assert failure_status(urllib3.exceptions.ProtocolError("reset")) == CONNECTION_ERROR


def test_a_wait_for_a_budget_slot_is_counted_with_its_time() -> None:
    clock = ManualClock(0.0)
    limiter = RateLimiter(
        {"general": Budget(1, 10.0)},
        MemorySlotStore(clock=clock),
        clock=clock,
        sleep=clock.advance,
        in_flight_seconds=0.0,
        max_wait=30.0,
        target="budget-target",
    )
    limiter.release(limiter.acquire("general"))  # free: no wait
    assert waits("budget-target") == (0, 0)
    limiter.release(limiter.acquire("general"))  # waits for the first slot's window
    assert waits("budget-target") == (1, pytest.approx(10.0))
    limiter.max_wait = 1.0
    with pytest.raises(RetryableError):  # too long a wait: refused at once, not counted
        limiter.acquire("general")
    assert waits("budget-target") == (1, pytest.approx(10.0))


def test_a_limiter_without_a_target_counts_under_its_namespace() -> None:
    clock = ManualClock(0.0)
    limiter = RateLimiter(
        {"general": Budget(1, 1.0)},
        MemorySlotStore(clock=clock),
        namespace="crm:abc",
        clock=clock,
        sleep=clock.advance,
        in_flight_seconds=0.0,
    )
    limiter.release(limiter.acquire("general"))
    limiter.release(limiter.acquire("general"))
    assert waits("crm:abc") == (1, pytest.approx(1.0))
