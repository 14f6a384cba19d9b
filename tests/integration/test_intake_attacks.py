"""Hostile senders against the real gunicorn on loopback: slow bodies, forged headers, log lines."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import RunningService, raw_chunked_post

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).parents[1] / "fixtures"
HEAD = (
    "POST /webhooks/sipgate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    "Transfer-Encoding: chunked\r\n\r\n"
)


@pytest.fixture
def body() -> bytes:
    return (FIXTURES / "example-v1.json").read_bytes()


class Trickler(threading.Thread):
    """A client sending a chunked body one byte per `interval` until the server answers."""

    def __init__(self, port: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.port, self.interval = port, interval
        self.answer: bytes | None = None
        self.connected = threading.Event()

    def run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=60) as sock:
            sock.sendall(HEAD.encode())
            self.connected.set()
            sock.settimeout(self.interval)
            for byte in b'1\r\n{\r\n1\r\n"\r\n' * 50:
                try:
                    answer = sock.recv(4096)
                except TimeoutError:
                    answer = None
                if answer is not None:
                    self.answer = answer + self._rest(sock) if answer else b"closed"
                    return
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    self.answer = b"closed"
                    return

    @staticmethod
    def _rest(sock: socket.socket) -> bytes:
        sock.settimeout(10)
        rest = b""
        try:
            while part := sock.recv(4096):
                rest += part
        except OSError:
            pass  # closed, or nothing more to read
        return rest

    @property
    def status(self) -> int | None:
        if not self.answer or not self.answer.startswith(b"HTTP/"):
            return None
        return int(self.answer.split()[1])


def start(tmp_path: Path, **server: object) -> RunningService:
    running = RunningService(tmp_path, server=server)
    running.start_web()
    return running


@pytest.fixture
def patient(tmp_path: Path) -> Iterator[RunningService]:
    """Two gunicorn processes of four threads (the default) and a long body deadline."""
    running = start(tmp_path, workers=2, body_timeout_seconds=60)
    yield running
    running.stop()


def test_slow_bodies_do_not_hold_up_a_real_webhook(patient: RunningService, body: bytes) -> None:
    attackers = [Trickler(patient.port, interval=2.0) for _ in range(4)]
    for attacker in attackers:
        attacker.start()
        attacker.connected.wait(30)
    time.sleep(0.5)  # let every attacker's request reach a worker thread
    assert raw_chunked_post(patient.port, "/webhooks/sipgate", body)[0] == 200
    # Answered while every attacker was still trickling (their deadline is a minute away).
    assert [a.answer for a in attackers] == [None] * 4
    assert len(patient.status()) == 1


def test_a_body_that_does_not_arrive_in_time_is_answered_408(tmp_path: Path, body: bytes) -> None:
    running = start(tmp_path, body_timeout_seconds=1)
    try:
        attacker = Trickler(running.port, interval=0.3)
        attacker.start()
        attacker.join(60)
        assert attacker.status == 408, attacker.answer
        assert b"did not arrive within 1 seconds" in (attacker.answer or b"")
        # A webhook sent at once is not affected by the deadline.
        assert raw_chunked_post(running.port, "/webhooks/sipgate", body)[0] == 200
        assert len(running.status()) == 1
    finally:
        running.stop()


def test_forwarded_for_counts_only_from_the_proxy_addresses(tmp_path: Path, body: bytes) -> None:
    running = start(
        tmp_path,
        allowed_ips=["217.116.118.254"],
        trusted_proxies=1,
        proxy_addresses=["192.0.2.10"],  # our proxy; the test client on loopback is not it
    )
    try:
        forged = {"X-Forwarded-For": "217.116.118.254"}
        assert raw_chunked_post(running.port, "/webhooks/sipgate", body, headers=forged)[0] == 403
        assert running.status() == []
    finally:
        running.stop()


def test_a_script_name_header_is_ignored_not_a_500(tmp_path: Path, body: bytes) -> None:
    running = start(tmp_path, trusted_proxies=1)  # loopback is a proxy address by default
    try:
        headers = {"SCRIPT_NAME": "/elsewhere", "X-Forwarded-For": "203.0.113.9"}
        status, _ = raw_chunked_post(running.port, "/webhooks/sipgate", body, headers=headers)
        assert status == 200
    finally:
        running.stop()


def test_nothing_after_the_webhook_path_reaches_the_logs(tmp_path: Path, body: bytes) -> None:
    running = start(tmp_path, secret="the-right-secret-0123456789")
    try:
        mistyped = "/webhooks/sipgate/the-rihgt-secret-0123456789"
        assert raw_chunked_post(running.port, mistyped, body)[0] == 403
        right = "/webhooks/sipgate/the-right-secret-0123456789"
        assert raw_chunked_post(running.port, right, body)[0] == 200
        document = json.loads(body)
        document["call"]["id"] = "pbx-2\nERROR forged line"
        forged = json.dumps(document).encode()
        assert raw_chunked_post(running.port, right, forged)[0] == 422
        running.stop()
        log = running.log("web")
        assert "rihgt" not in log and "the-right-secret" not in log
        assert "/webhooks/sipgate/***" in log  # the access log still shows the request
        assert not any(line.startswith("ERROR forged") for line in log.splitlines())
    finally:
        running.stop()
