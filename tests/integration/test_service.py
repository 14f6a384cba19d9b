"""The real service on loopback: gunicorn + Huey worker processes, SQLite ledger and queue."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.harness import RunningService, raw_chunked_post

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.fixture
def body() -> bytes:
    return (FIXTURES / "example-v1.json").read_bytes()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[RunningService]:
    running = RunningService(tmp_path)
    running.start_web()
    running.start_worker()
    yield running
    running.stop()


def warehouse_rows(folder: Path, call_id: str) -> int:
    with sqlite3.connect(folder / "data" / "calls.db") as conn:
        return int(
            conn.execute(
                "select count(*) from sipgate_calls where call_id = ?", (call_id,)
            ).fetchone()[0]
        )


def all_done(rows: list[dict[str, Any]]) -> bool:
    return bool(rows) and all(t["status"] == "done" for r in rows for t in r["targets"].values())


def test_chunked_webhook_lands_in_the_database_target(service: RunningService, body: bytes) -> None:
    status, answer = raw_chunked_post(service.port, "/webhooks/sipgate", body)
    assert status == 200, answer
    assert json.loads(answer)["status"] == "accepted"
    rows = service.wait_for(all_done)
    assert rows[0]["call_id"] == "pbx-a1b2c3d4-e5f6-7890-abcd-ef1234567890"
    assert warehouse_rows(service.folder, rows[0]["call_id"]) == 1
    # Neither process logged the content of the call or a full phone number.
    logs = service.log("web") + service.log("worker")
    assert "accepted call" in logs and "done" in logs
    for secret in (
        "4921163553400",
        "4921163553401",
        "invoice",
        "Invoice inquiry",
        "customer number",
    ):
        assert secret not in logs
    assert "**********400" in logs


def test_a_repeated_webhook_is_a_duplicate(service: RunningService, body: bytes) -> None:
    assert raw_chunked_post(service.port, "/webhooks/sipgate", body)[0] == 200
    status, answer = raw_chunked_post(service.port, "/webhooks/sipgate", body)
    assert (status, json.loads(answer)["status"]) == (200, "duplicate")
    rows = service.wait_for(all_done)
    assert len(rows) == 1
    assert warehouse_rows(service.folder, rows[0]["call_id"]) == 1


def test_oversized_chunked_body_is_refused_not_truncated(tmp_path: Path, body: bytes) -> None:
    running = RunningService(tmp_path, server={"max_body_bytes": 4096})
    running.start_web()
    try:
        document = json.loads(body)
        document["assist"]["transcription"]["content"] = "word " * 2000
        status, answer = raw_chunked_post(
            running.port, "/webhooks/sipgate", json.dumps(document).encode()
        )
        assert status == 413, answer
        small_enough = raw_chunked_post(running.port, "/webhooks/sipgate", body)
        assert small_enough[0] == 200
        assert [r["call_id"] for r in running.status()] == [document["call"]["id"]]
    finally:
        running.stop()


def test_spoofed_forwarded_for_cannot_pass_the_allow_list(tmp_path: Path, body: bytes) -> None:
    running = RunningService(
        tmp_path, server={"allowed_ips": ["217.116.118.254"], "trusted_proxies": 1}
    )
    running.start_web()
    try:
        # A client forges sipgate's address; the (simulated) proxy appends the real peer address.
        forged = {"X-Forwarded-For": "217.116.118.254, 198.51.100.23"}
        status, answer = raw_chunked_post(running.port, "/webhooks/sipgate", body, headers=forged)
        assert status == 403
        assert b"217.116" not in answer
        assert running.status() == []
        via_proxy = {"X-Forwarded-For": "217.116.118.254"}
        assert (
            raw_chunked_post(running.port, "/webhooks/sipgate", body, headers=via_proxy)[0] == 200
        )
    finally:
        running.stop()


def test_killed_worker_mid_delivery_still_delivers_exactly_once(
    tmp_path: Path, body: bytes
) -> None:
    marker = tmp_path / "hung-once"
    running = RunningService(
        tmp_path,
        targets=[
            {
                "name": "warehouse",
                "type": "tests.support.adapters:SlowDatabaseAdapter",
                "url": "sqlite:///data/calls.db",
                "hang_marker": str(marker),
                "hang_seconds": 120,
            }
        ],
    )
    running.start_web()
    running.start_worker()
    try:
        assert raw_chunked_post(running.port, "/webhooks/sipgate", body)[0] == 200
        # The worker wrote the call to the target and hangs before telling the ledger.
        running.wait_for(
            lambda rows: (
                marker.exists() and rows[0]["targets"]["warehouse"]["status"] == "processing"
            )
        )
        running.kill_worker()
        call_id = json.loads(body)["call"]["id"]
        assert warehouse_rows(tmp_path, call_id) == 1
        running.start_worker()
        rows = running.wait_for(all_done)
        assert rows[0]["targets"]["warehouse"]["attempts"] == 2
        assert warehouse_rows(tmp_path, call_id) == 1
    finally:
        running.stop()


def test_serve_runs_web_and_worker_and_send_example_reaches_it(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    running = RunningService(tmp_path)
    serve = subprocess.Popen(
        [sys.executable, "-m", "connector", "serve"],
        env=running.env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{running.url}/healthz", timeout=1).ok:
                    break
            except requests.RequestException:  # refused, or booting workers answer late
                time.sleep(0.2)
        sent = subprocess.run(
            [sys.executable, "-m", "connector", "send-example"],
            env=running.env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.startswith("200 ") and '"accepted"' in sent.stdout
        rows = running.wait_for(all_done)
        assert len(rows) == 1
    finally:
        serve.send_signal(__import__("signal").SIGTERM)
        assert serve.wait(30) == 0


def test_a_malformed_chunked_body_is_a_400(service: RunningService) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
        sock.sendall(
            b"POST /webhooks/sipgate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n"
        )
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400")
    assert service.status() == []
