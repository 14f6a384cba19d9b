"""Run the real service (gunicorn web + Huey worker processes) on loopback for tests.

Nothing here waits a fixed time for a process: readiness is polled until a generous deadline (a
loaded 2-core machine may take many seconds to boot gunicorn), every wait names what it waited
for when it gives up, and `RunningService` is a context manager that stops whatever it started,
also when starting failed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import requests
import yaml

ROOT = Path(__file__).parents[2]
START_DEADLINE = 120.0  # seconds; only reached when something is broken


def wait_until(ready: Callable[[], bool], what: str, deadline: float = START_DEADLINE) -> None:
    """Poll `ready` until it is true; raise after `deadline` seconds, naming `what`."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"gave up waiting for {what} after {deadline:.0f}s")


def answers(url: str) -> bool:
    """True once `url` answers 200; a refused or slow connection is simply not yet."""
    try:
        return requests.get(url, timeout=10).status_code == 200
    except requests.RequestException:
        return False


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

    def __enter__(self) -> RunningService:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start_web(self) -> None:
        """Start `sipgate-crm web` and return once ``/readyz`` answers 200."""
        web = self.web = self._spawn("web")
        try:
            wait_until(
                lambda: web.poll() is not None or answers(f"{self.url}/readyz"), "the web side"
            )
            if web.poll() is not None:
                raise RuntimeError(f"web exited with {web.returncode}")
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(f"{exc}:\n{self.log('web')}") from exc

    def start_worker(self) -> None:
        self.worker = self._spawn("worker")

    def kill_worker(self) -> None:
        """``kill -9`` the worker and reap it."""
        assert self.worker is not None
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait(30)

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

    def wait_for(self, predicate: Any, timeout: float = 60.0) -> list[dict[str, Any]]:
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
        """Stop both processes (gracefully, then with SIGKILL) and reap them."""
        for proc, sig in ((self.web, signal.SIGTERM), (self.worker, signal.SIGINT)):
            if proc is not None and proc.poll() is None:
                proc.send_signal(sig)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(30)
