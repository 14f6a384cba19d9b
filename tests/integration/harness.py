"""Run the real service (gunicorn web + Huey worker processes) on loopback for tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
import yaml

ROOT = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raw_chunked_post(
    port: int, path: str, body: bytes, chunk: int = 700, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """POST `body` with Transfer-Encoding: chunked over a plain socket, as sipgate does."""
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        "Transfer-Encoding: chunked",
        "Connection: close",
    ]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        try:
            for start in range(0, len(body), chunk):
                part = body[start : start + chunk]
                sock.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer 413 and close before reading everything
        response = b""
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            response += data
    status_line, _, rest = response.partition(b"\r\n")
    body_out = rest.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in rest else b""
    return int(status_line.split()[1]), body_out


class RunningService:
    """The connector started as an operator would: `sipgate-crm web` and `sipgate-crm worker`."""

    def __init__(self, folder: Path, **overrides: Any) -> None:
        self.folder = folder
        self.port = free_port()
        document: dict[str, Any] = {
            "server": {"bind": f"127.0.0.1:{self.port}", "workers": 2},
            "storage": {"url": "sqlite:///data/connector.db"},
            "queue": {
                "url": "sqlite:///data/queue.db",
                "lease_seconds": 3,
                "poll_interval_seconds": 0.2,
                "requeue_after_seconds": 2,
                "retry_base_seconds": 0.5,
                "retry_max_seconds": 2,
            },
            "targets": [
                {"name": "warehouse", "type": "database", "url": "sqlite:///data/calls.db"}
            ],
        }
        for key, value in overrides.items():
            document[key] = {**document.get(key, {}), **value} if isinstance(value, dict) else value
        self.config_path = folder / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(document))
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "SIPGATE_CRM_CONFIG": str(self.config_path),
        }
        self.web: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, command: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{command}.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "connector", command, *args],
            env=self.env,
            cwd=self.folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def start_web(self) -> None:
        self.web = self._spawn("web")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass  # not listening yet, or too busy booting to answer within a second
            if self.web.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("web did not start:\n" + self.log("web"))

    def start_worker(self) -> None:
        self.worker = self._spawn("worker")

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait(10)

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def status(self) -> list[dict[str, Any]]:
        out = subprocess.run(
            [sys.executable, "-m", "connector", "status", "--json", "--limit", "1000"],
            env=self.env,
            capture_output=True,
            check=True,
            cwd=self.folder,
        )
        return [json.loads(line) for line in out.stdout.decode().splitlines() if line.strip()]

    def wait_for(self, predicate: Any, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            rows = self.status()
            if predicate(rows):
                return rows
            time.sleep(0.3)
        raise AssertionError(
            f"condition not met; status: {rows}\nworker log:\n{self.log('worker')}"
        )

    def stop(self) -> None:
        for proc, sig in ((self.web, signal.SIGTERM), (self.worker, signal.SIGINT)):
            if proc is not None and proc.poll() is None:
                proc.send_signal(sig)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
