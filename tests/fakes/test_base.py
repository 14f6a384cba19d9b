"""Tests for tests.fakes.base: lifecycle on loopback, the request log, fault rules, the clock."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
import requests
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from . import base
from .base import FakeServer, LoggedRequest, ManualClock


class EchoServer(FakeServer[LoggedRequest]):
    """The smallest fake: answers ``{"path": ...}``, honours the fault rules, logs everything."""

    name = "echo-test-server"

    def _default_fault_body(self, status: int) -> Any:
        return {"injected": status}

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        fault = self._take_fault(request.method, request.path)
        if fault is not None:
            response = Response(json.dumps(fault.body), status=fault.status)
            response.headers.update(fault.headers)
        else:
            response = Response(json.dumps({"path": request.path}), status=200)
        delay = self._take_delay(request.method, request.path)
        lost = self._take_loss(request.method, request.path)
        self._log_request(
            LoggedRequest(
                method=request.method,
                path=request.path,
                query={key: request.args.getlist(key) for key in request.args},
                json=request.get_json(silent=True),
                status=response.status_code,
                time=time.time(),
                kind="auth" if request.path == "/token" else "api",
                injected=fault is not None,
                delayed_seconds=delay,
                lost=lost,
            )
        )
        self._hold(delay)
        if lost:
            return self._lose_answer(environ, start_response)
        result: Iterable[bytes] = response(environ, start_response)
        return result


@pytest.fixture
def server() -> Iterator[EchoServer]:
    with EchoServer() as running:
        yield running


def get(server: FakeServer[Any], path: str, timeout: float = 5.0) -> requests.Response:
    return requests.get(f"{server.url}{path}", timeout=timeout)


def test_serves_on_loopback_and_releases_the_port_on_stop() -> None:
    server = EchoServer().start()
    try:
        port = server.port
        assert server.url == f"http://127.0.0.1:{port}"
        assert get(server, "/x").json() == {"path": "/x"}
    finally:
        server.stop()
    assert not server.running
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # free again
    server.stop()  # stopping twice is harmless


def test_a_server_that_cannot_start_leaves_nothing_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bound: list[BaseWSGIServer] = []

    def recording_make_server(*args: Any, **kwargs: Any) -> BaseWSGIServer:
        bound.append(make_server(*args, **kwargs))
        return bound[-1]

    def refuse(thread: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(base, "make_server", recording_make_server)
    monkeypatch.setattr(threading.Thread, "start", refuse)
    server = EchoServer(tls=True)
    with pytest.raises(RuntimeError, match="can't start"):
        server.start()
    monkeypatch.undo()
    assert not server.running and server.ca_bundle_path == ""
    [httpd] = bound
    assert httpd.socket.fileno() == -1  # the port was released


def test_tls_serves_with_a_ca_that_exists_while_running() -> None:
    server = EchoServer(tls=True)
    with server:
        assert server.url.startswith("https://127.0.0.1:")
        answer = requests.get(f"{server.url}/secure", timeout=5, verify=server.ca_bundle_path)
        assert answer.json() == {"path": "/secure"}
        ca = server.ca_bundle_path
    assert server.ca_bundle_path == ""
    with pytest.raises(FileNotFoundError):
        open(ca).close()


def test_the_request_log_filters_by_method_path_and_kind(server: EchoServer) -> None:
    get(server, "/a?x=1&x=2")
    requests.post(f"{server.url}/token", json={"grant": "yes"}, timeout=5)
    get(server, "/b")
    assert [entry.path for entry in server.request_log] == ["/a", "/token", "/b"]
    assert server.request_log[0].query == {"x": ["1", "2"]}
    assert [entry.json for entry in server.requests("POST")] == [{"grant": "yes"}]
    assert [entry.path for entry in server.requests(path_regex=r"^/[ab]$")] == ["/a", "/b"]
    assert [entry.path for entry in server.requests(kind="auth")] == ["/token"]
    assert server.requests("GET", r"/token") == []
    server.clear_request_log()
    assert server.request_log == []


def test_fail_next_answers_count_matching_requests(server: EchoServer) -> None:
    server.fail_next(r"^/calls$", 503, count=2, method="POST", headers={"Retry-After": "7"})
    assert get(server, "/calls").status_code == 200  # another method
    first = requests.post(f"{server.url}/calls", timeout=5)
    assert (first.status_code, first.json(), first.headers["Retry-After"]) == (
        503,
        {"injected": 503},
        "7",
    )
    assert requests.post(f"{server.url}/calls", timeout=5).status_code == 503
    assert requests.post(f"{server.url}/calls", timeout=5).status_code == 200
    assert [entry.injected for entry in server.requests("POST")] == [True, True, False]


def test_fail_next_without_count_fails_until_cleared(server: EchoServer) -> None:
    server.fail_next(r"/down", 502, body={"why": "maintenance"}, count=None)
    assert [get(server, "/down").json() for _ in range(3)] == [{"why": "maintenance"}] * 3
    server.clear_faults()
    assert get(server, "/down").status_code == 200


def test_delay_after_commit_holds_the_answer_and_stop_cuts_it_short() -> None:
    server = EchoServer().start()
    try:
        server.delay_after_commit(r"/slow", 60.0)
        with pytest.raises(requests.ReadTimeout):
            get(server, "/slow", timeout=0.5)
        assert [entry.delayed_seconds for entry in server.request_log] == [60.0]
        assert get(server, "/slow").status_code == 200  # the rule was used up
    finally:
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        stopper.join(timeout=30)
    assert not stopper.is_alive()  # the held answer did not keep stop() waiting for a minute


def test_lose_answer_after_commit_drops_the_connection_once(server: EchoServer) -> None:
    server.lose_answer_after_commit(r"/lost", method="POST")
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{server.url}/lost", json={}, timeout=5)
    assert get(server, "/lost").status_code == 200  # another method
    assert requests.post(f"{server.url}/lost", json={}, timeout=5).status_code == 200  # used up
    assert [entry.lost for entry in server.request_log] == [True, False, False]


def test_the_manual_clock_moves_only_when_advanced() -> None:
    clock = ManualClock(start=5.0)
    assert clock() == 5.0
    clock.advance(2.5)
    assert clock() == 7.5
