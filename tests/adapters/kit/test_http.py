"""The HTTP helper: status classification, waits, outcome-unknown, scrubbing, the budget."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests
import responses

from connector.adapters import (
    Budget,
    Failure,
    HttpClient,
    HttpPolicy,
    OutcomeUnknown,
    PermanentError,
    RateLimiter,
    Rejected,
    RetryableError,
    TargetParked,
    Wait,
    retry_after,
)
from connector.adapters.kit.ratelimit import MemorySlotStore

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
BASE = "https://crm.example.invalid/api"


def _daily(headers: Any, body: Any) -> bool:
    return isinstance(body, dict) and body.get("limit") == "daily"


POLICY = HttpPolicy(
    service="ExampleCRM",
    credential="api_token",
    daily_limit=_daily,
    scopes=lambda body: body.get("missing_scopes", []) if isinstance(body, dict) else [],
    detail=lambda body: str(body.get("error", "")) if isinstance(body, dict) else "",
)


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


def client(policy: HttpPolicy = POLICY, **kwargs: Any) -> HttpClient:
    return HttpClient(BASE, policy, clock=lambda: NOW, secrets=("s3cret-token",), **kwargs)


def failure(mocked: responses.RequestsMock, method: str, status: int, **kwargs: Any) -> Exception:
    mocked.add(method, f"{BASE}/things", status=status, **kwargs)
    with pytest.raises(Exception) as caught:
        client().request(method, "things", operation="create thing", json={})
    return caught.value


def test_returns_the_decoded_answer_and_sends_the_headers(mocked: responses.RequestsMock) -> None:
    mocked.post(f"{BASE}/things", json={"id": 7}, status=201)
    http = client(headers={"Authorization": "Bearer x"})
    assert http.request("POST", "/things", operation="create thing", json={"a": 1}) == {"id": 7}
    assert mocked.calls[0].request.headers["Authorization"] == "Bearer x"


def test_an_empty_answer_is_none(mocked: responses.RequestsMock) -> None:
    mocked.delete(f"{BASE}/things/1", status=204)
    assert client().request("DELETE", "things/1", operation="delete thing") is None


def test_401_is_permanent_and_names_the_credential(mocked: responses.RequestsMock) -> None:
    error = failure(mocked, "POST", 401)
    assert isinstance(error, PermanentError)
    assert "api_token" in str(error) and "401" in str(error)


def test_403_is_permanent_and_names_the_missing_scopes(mocked: responses.RequestsMock) -> None:
    error = failure(mocked, "POST", 403, json={"missing_scopes": ["deals:write"]})
    assert isinstance(error, PermanentError)
    assert "deals:write" in str(error) and "api_token" in str(error)


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_other_client_errors_are_permanent(mocked: responses.RequestsMock, status: int) -> None:
    error = failure(mocked, "POST", status)
    assert type(error) is Rejected and error.status == status


def test_a_status_can_be_declared_retryable(mocked: responses.RequestsMock) -> None:
    mocked.post(f"{BASE}/things", status=409)
    policy = HttpPolicy(service="ExampleCRM", statuses={409: Failure.RETRY}, default_wait=7.0)
    with pytest.raises(RetryableError) as caught:
        client(policy).request("POST", "things", operation="create thing")
    assert caught.value.retry_after == 7.0


def test_a_status_can_be_declared_permanent(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/things", status=503)
    policy = HttpPolicy(service="ExampleCRM", statuses={503: Failure.PERMANENT})
    with pytest.raises(PermanentError):
        client(policy).request("GET", "things", operation="list things")


def test_404_may_mean_nothing_found(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/things/9", status=404)
    assert client().request("GET", "things/9", operation="read", missing_ok=True) is None


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503])
def test_temporary_statuses_are_retryable(mocked: responses.RequestsMock, status: int) -> None:
    error = failure(mocked, "GET", status)
    assert isinstance(error, RetryableError) and not isinstance(error, OutcomeUnknown)


@pytest.mark.parametrize("status", [408, 500, 504])
def test_a_lost_write_has_an_unknown_outcome(mocked: responses.RequestsMock, status: int) -> None:
    assert isinstance(failure(mocked, "POST", status), OutcomeUnknown)


def test_429_and_425_were_not_applied(mocked: responses.RequestsMock) -> None:
    for status in (425, 429):
        error = failure(mocked, "POST", status)
        assert isinstance(error, RetryableError) and not isinstance(error, OutcomeUnknown)


def test_retry_after_in_seconds_is_honoured(mocked: responses.RequestsMock) -> None:
    error = failure(mocked, "GET", 429, headers={"Retry-After": "12"})
    assert isinstance(error, RetryableError) and error.retry_after == 12.0


def test_retry_after_as_an_http_date_is_honoured(mocked: responses.RequestsMock) -> None:
    later = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    error = failure(mocked, "GET", 503, headers={"Retry-After": later})
    assert isinstance(error, RetryableError) and error.retry_after == 90.0


def test_a_reset_header_is_read_as_seconds_or_epoch() -> None:
    assert retry_after({"X-RateLimit-Reset": "4"}, NOW, ("X-RateLimit-Reset",)) == 4.0
    epoch = str(int(NOW.timestamp()) + 30)
    assert retry_after({"x-ratelimit-reset": epoch}, NOW, ("X-RateLimit-Reset",)) == 30.0
    assert retry_after({"Retry-After": "soon"}, NOW) is None


def test_a_used_up_daily_limit_parks_the_target(mocked: responses.RequestsMock) -> None:
    error = failure(mocked, "POST", 429, json={"limit": "daily"}, headers={"Retry-After": "7200"})
    assert isinstance(error, TargetParked)
    assert error.until == NOW + timedelta(seconds=7200)


def test_a_daily_limit_parks_at_least_the_policy_time(mocked: responses.RequestsMock) -> None:
    error = failure(mocked, "POST", 429, json={"limit": "daily"})
    assert isinstance(error, TargetParked)
    assert error.until == NOW + timedelta(seconds=POLICY.park_seconds)


def test_a_timeout_of_a_write_has_an_unknown_outcome(mocked: responses.RequestsMock) -> None:
    mocked.post(f"{BASE}/things", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(OutcomeUnknown, match="outcome unknown"):
        client().request("POST", "things", operation="create thing")


def test_a_timeout_of_a_read_is_a_plain_retry(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/things", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(RetryableError) as caught:
        client().request("GET", "things", operation="list things")
    assert not isinstance(caught.value, OutcomeUnknown)


def test_a_refused_connection_was_not_sent(mocked: responses.RequestsMock) -> None:
    mocked.post(f"{BASE}/things", body=requests.ConnectionError("Connection refused"))
    with pytest.raises(RetryableError) as caught:
        client().request("POST", "things", operation="create thing")
    assert not isinstance(caught.value, OutcomeUnknown)


def test_an_unreadable_answer_to_a_write_has_an_unknown_outcome(
    mocked: responses.RequestsMock,
) -> None:
    mocked.post(f"{BASE}/things", body="<html>proxy error</html>", status=200)
    with pytest.raises(OutcomeUnknown):
        client().request("POST", "things", operation="create thing")


def test_raw_content_and_request_headers_are_sent_and_any_answer_is_taken(
    mocked: responses.RequestsMock,
) -> None:
    mocked.post(f"{BASE}/hook", body="OK, thanks", status=202)
    http = client(headers={"User-Agent": "kit"})
    body = b'{"b":2,"a":1}'
    answer = http.request(
        "POST",
        "hook",
        operation="send",
        content=body,
        headers={"X-Signature": "v1,abc"},
        json_answer=False,
    )
    assert answer is None
    sent = mocked.calls[0].request
    assert sent.body == body
    assert sent.headers["X-Signature"] == "v1,abc"
    assert sent.headers["User-Agent"] == "kit"
    with pytest.raises(OutcomeUnknown):  # the same text answer is unreadable when JSON is wanted
        http.request("POST", "hook", operation="send", content=body)


def test_error_details_are_scrubbed(mocked: responses.RequestsMock) -> None:
    echo = "value +49 30 1234567 of erika@example.com rejected, token s3cret-token"
    error = failure(mocked, "POST", 422, json={"error": echo})
    text = str(error)
    assert "rejected" in text
    for leaked in ("1234567", "erika@example.com", "s3cret-token"):
        assert leaked not in text


def test_every_request_takes_a_slot_of_the_shared_budget(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/things", json=[])
    limiter = RateLimiter(
        {"general": Budget(1, 10.0)}, MemorySlotStore(clock=lambda: 0.0), max_wait=0.0
    )
    http = client(limiter=limiter)
    http.request("GET", "things", operation="list things")
    with pytest.raises(RetryableError, match="budget"):
        http.request("GET", "things", operation="list things")
    assert len(mocked.calls) == 1


def test_requests_have_the_policy_timeout(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/things", json=[])
    policy = HttpPolicy(service="ExampleCRM", timeout=(1.5, 4.0))
    client(policy).request("GET", "things", operation="list things")
    assert mocked.calls[0].request.req_kwargs["timeout"] == (1.5, 4.0)


def test_a_permanent_answer_keeps_its_status_and_body(mocked: responses.RequestsMock) -> None:
    error = failure(mocked, "POST", 404, json={"error": "NOT_FOUND"})
    assert isinstance(error, Rejected) and not isinstance(error, RetryableError)
    assert (error.status, error.body) == (404, {"error": "NOT_FOUND"})


WAITS = HttpPolicy(
    service="ExampleCRM",
    waits={423: Wait(default=2.0, minimum=2.0), 477: Wait(default=60.0, park_after=900.0)},
    default_wait=None,
)


@pytest.mark.parametrize(
    ("status", "headers", "wait"),
    [
        (423, {}, 2.0),
        (423, {"Retry-After": "1"}, 2.0),
        (423, {"Retry-After": "7"}, 7.0),
        (477, {}, 60.0),
        (477, {"Retry-After": "120"}, 120.0),
        (503, {}, None),
    ],
)
def test_a_status_can_declare_its_wait(
    mocked: responses.RequestsMock, status: int, headers: dict[str, str], wait: float | None
) -> None:
    mocked.get(f"{BASE}/things", status=status, headers=headers)
    with pytest.raises(RetryableError) as caught:
        client(WAITS).request("GET", "things", operation="list things")
    assert caught.value.retry_after == wait
    assert not isinstance(caught.value, TargetParked)


def test_a_wait_longer_than_declared_parks_the_target(mocked: responses.RequestsMock) -> None:
    mocked.post(f"{BASE}/things", status=477, headers={"Retry-After": "3600"})
    with pytest.raises(TargetParked) as caught:
        client(WAITS).request("POST", "things", operation="create thing")
    assert caught.value.until == NOW + timedelta(seconds=3600)


def test_an_error_code_in_the_body_beats_the_status(mocked: responses.RequestsMock) -> None:
    policy = HttpPolicy(
        service="ExampleCRM",
        code=lambda body: body[0]["errorCode"] if isinstance(body, list) and body else "",
        codes={"UNABLE_TO_LOCK_ROW": Failure.RETRY, "DUPLICATES_DETECTED": Failure.PERMANENT},
    )
    mocked.post(f"{BASE}/things", status=400, json=[{"errorCode": "UNABLE_TO_LOCK_ROW"}])
    mocked.post(f"{BASE}/things", status=503, json=[{"errorCode": "DUPLICATES_DETECTED"}])
    with pytest.raises(RetryableError):
        client(policy).request("POST", "things", operation="create thing")
    with pytest.raises(Rejected) as caught:
        client(policy).request("POST", "things", operation="create thing")
    assert caught.value.status == 503


def test_a_used_up_window_header_gives_the_wait(mocked: responses.RequestsMock) -> None:
    policy = HttpPolicy(
        service="ExampleCRM", remaining_headers={"X-Secondly-Remaining": 1.0}, default_wait=10.0
    )
    mocked.get(f"{BASE}/things", status=429, headers={"X-Secondly-Remaining": "0"})
    mocked.get(f"{BASE}/things", status=429, headers={"X-Secondly-Remaining": "3"})
    waits = []
    for _ in range(2):
        with pytest.raises(RetryableError, match="rate limit") as caught:
            client(policy).request("GET", "things", operation="list things")
        waits.append(caught.value.retry_after)
    assert waits == [1.0, 10.0]


def test_the_policy_can_say_until_when_a_daily_limit_parks(
    mocked: responses.RequestsMock,
) -> None:
    midnight = NOW.replace(hour=23, minute=1)
    policy = HttpPolicy(
        service="ExampleCRM",
        daily_limit=lambda headers, body: isinstance(body, dict) and body.get("limit") == "daily",
        parked_until=lambda now: (midnight, "it resets at midnight"),
        limit_statuses=(403,),
    )
    mocked.post(f"{BASE}/things", status=403, json={"limit": "daily"})
    mocked.post(f"{BASE}/things", status=400, json={"limit": "daily"})
    with pytest.raises(TargetParked, match="resets at midnight") as caught:
        client(policy).request("POST", "things", operation="create thing")
    assert caught.value.until == midnight
    with pytest.raises(Rejected):  # not a status that can mean the daily limit
        client(policy).request("POST", "things", operation="create thing")


def test_an_error_code_can_declare_its_wait(mocked: responses.RequestsMock) -> None:
    policy = HttpPolicy(
        service="ExampleCRM",
        code=lambda body: str(body.get("code", "")) if isinstance(body, dict) else "",
        codes={"TOO_MANY_CONCURRENT": Wait(default=60.0)},
    )
    mocked.post(f"{BASE}/things", status=403, json={"code": "TOO_MANY_CONCURRENT"})
    with pytest.raises(RetryableError) as caught:
        client(policy).request("POST", "things", operation="create thing")
    assert caught.value.retry_after == 60.0 and not isinstance(caught.value, OutcomeUnknown)
