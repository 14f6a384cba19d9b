"""What the fake CRM servers share: loopback lifecycle, the request log, fault rules, a clock.

A fake subclasses `FakeServer`, implements `_wsgi` (logging every request with `_log_request`)
and `_default_fault_body`.
Tests then use the same API on every fake:

* ``with Fake() as server:`` (or `start` / `stop`): serve on ``127.0.0.1``, ephemeral port, in
  a daemon thread; `stop` cuts pending response delays short and releases the port.
* `request_log`, `requests` (by method, path pattern and kind), `clear_request_log`.
* `fail_next` (answer matching requests with a status, body and headers, ``count`` times),
  `delay_after_commit` (apply, then hold the answer), `lose_answer_after_commit` (apply, then
  close the connection without answering), `clear_faults`.
* a ``clock`` (`ManualClock` in tests) for everything time-based inside the fake.
"""

from __future__ import annotations

import re
import socket
import ssl
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Literal, Self, TypeVar

import trustme
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

__all__ = [
    "FakeServer",
    "Fault",
    "LoggedRequest",
    "ManualClock",
    "RequestKind",
]

#: What a logged request was: a data API call, an authentication/token request, anything else.
RequestKind = Literal["api", "auth", "other"]


class ManualClock:
    """A clock for tests: time only moves when :meth:`advance` is called."""

    def __init__(self, start: float = 1_000.0) -> None:
        """Start the clock at ``start`` seconds."""
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        """Return the current time in seconds."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        with self._lock:
            self._now += seconds


@dataclass(frozen=True, kw_only=True)
class LoggedRequest:
    """One request as a fake saw it, successful or not.

    ``json`` is the body exactly as decoded from the wire (so the JSON types the client used
    stay visible), ``query`` every value of every query parameter, ``time`` the wall-clock
    time it arrived. ``injected`` marks an answer from `FakeServer.fail_next`,
    ``delayed_seconds`` a hold from `FakeServer.delay_after_commit`, ``lost`` an answer
    `FakeServer.lose_answer_after_commit` never sent.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    json: Any
    status: int
    time: float
    kind: RequestKind
    injected: bool = False
    delayed_seconds: float = 0.0
    lost: bool = False


@dataclass
class Fault:
    """A rule for matching requests: an injected answer, or a hold after the answer is made.

    ``remaining`` is how many more requests it applies to (None: every one until cleared).
    """

    pattern: re.Pattern[str]
    method: str | None
    remaining: int | None
    status: int = 0
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def take(self, method: str, path: str) -> bool:
        """True (and one use consumed) when the rule applies to ``method`` and ``path``."""
        if self.remaining == 0 or (self.method and self.method.upper() != method.upper()):
            return False
        if not self.pattern.search(path):
            return False
        if self.remaining is not None:
            self.remaining -= 1
        return True


#: The request record of a fake (a `LoggedRequest` with the CRM's own details).
Entry = TypeVar("Entry", bound=LoggedRequest)


class _QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug request handler without per-request access logging."""

    def log(self, type: str, message: str, *args: Any) -> None:
        """Drop werkzeug's access and error log lines (the request log replaces them)."""


class FakeServer(ABC, Generic[Entry]):
    """A threaded WSGI server on loopback with a request log and fault rules (module docstring).

    Subclasses implement `_wsgi` and `_default_fault_body`; their seeding and inspection helpers
    stay thread-safe under ``self._lock``.
    """

    #: Thread name prefix, e.g. ``hubspot-test-server``.
    name = "fake-server"

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        host: str = "127.0.0.1",
        tls: bool = False,
    ) -> None:
        """Configure the server; nothing listens until :meth:`start`.

        ``clock`` is the fake's time source for everything time-based it emulates (pass a
        `ManualClock`); ``tls`` serves HTTPS with a certificate whose CA PEM is at
        `ca_bundle_path` while the server runs.
        """
        self._clock = clock
        self._host = host
        self._tls = tls
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        #: PEM of the CA that signed the server certificate (with ``tls``, while running).
        self.ca_bundle_path = ""
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._log: list[Entry] = []
        self._faults: list[Fault] = []
        self._delays: list[Fault] = []
        self._losses: list[Fault] = []
        self._httpd: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._scheme = "http"

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        """Bind an ephemeral port on the loopback interface and serve in a daemon thread."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        try:
            context = self._ssl_context()
            self._scheme = "http" if context is None else "https"
            self._httpd = make_server(
                self._host,
                0,
                self._wsgi,
                threaded=True,
                request_handler=_QuietRequestHandler,
                ssl_context=context,
            )
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"{self.name}-{self._httpd.server_port}",
                daemon=True,
            )
            self._thread.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop serving, wake up delayed responses and release the port (idempotent)."""
        self._stopping.set()
        httpd, thread = self._httpd, self._thread
        self._httpd = None
        self._thread = None
        serving = thread is not None and thread.is_alive()
        if httpd is not None:
            if serving:  # shutdown() waits for serve_forever, which a failed start never ran
                httpd.shutdown()
            httpd.server_close()
        if thread is not None and serving:
            thread.join(timeout=5)
        self._release()

    def __enter__(self) -> Self:
        """Start the server."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._httpd is not None

    @property
    def port(self) -> int:
        """Return the bound port (the server must be started)."""
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not running; call start() first")
        return int(self._httpd.server_port)

    @property
    def url(self) -> str:
        """Return the base URL, e.g. ``http://127.0.0.1:54321`` (``https`` with TLS)."""
        return f"{self._scheme}://{self._host}:{self.port}"

    def _ssl_context(self) -> ssl.SSLContext | None:
        """With ``tls``: a context with a fresh ``trustme`` certificate for ``127.0.0.1`` and
        ``localhost``, whose CA is written to `ca_bundle_path`; None serves plain HTTP."""
        if not self._tls:
            return None
        self._tmpdir = tempfile.TemporaryDirectory(prefix=f"{self.name}-")
        authority = trustme.CA()
        leaf = authority.issue_cert("127.0.0.1", "localhost")
        ca_path = Path(self._tmpdir.name) / "ca.pem"
        authority.cert_pem.write_to_path(str(ca_path))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        leaf.configure_cert(context)
        self.ca_bundle_path = str(ca_path)
        return context

    def _release(self) -> None:
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None
        self.ca_bundle_path = ""

    def _hold(self, seconds: float) -> None:
        """Wait ``seconds`` before answering, cut short by :meth:`stop`."""
        if seconds > 0:
            self._stopping.wait(seconds)

    @abstractmethod
    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Answer one request (and log it with `_log_request`)."""

    # ---------------------------------------------------------------- request log

    @property
    def request_log(self) -> list[Entry]:
        """Return a copy of the request log, oldest first."""
        with self._lock:
            return list(self._log)

    def requests(
        self,
        method: str | None = None,
        path_regex: str | None = None,
        *,
        kind: RequestKind | None = None,
    ) -> list[Entry]:
        """Logged requests with ``method``, a path ``path_regex`` is found in, and ``kind``."""
        pattern = re.compile(path_regex) if path_regex else None
        return [
            entry
            for entry in self.request_log
            if (method is None or entry.method == method.upper())
            and (pattern is None or pattern.search(entry.path))
            and (kind is None or entry.kind == kind)
        ]

    def clear_request_log(self) -> None:
        """Forget all logged requests."""
        with self._lock:
            self._log.clear()

    def _log_request(self, entry: Entry) -> None:
        with self._lock:
            self._log.append(entry)

    # ---------------------------------------------------------------- fault rules

    def fail_next(
        self,
        path_regex: str,
        status: int,
        body: Any = None,
        count: int | None = 1,
        *,
        method: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` without touching state.

        ``path_regex`` is searched in the request path. ``body`` may be JSON data, ``str`` or
        ``bytes`` (sent as is), or None for the CRM's own default error body. ``count=None``
        fails every matching request until :meth:`clear_faults`.
        """
        with self._lock:
            self._faults.append(
                Fault(
                    re.compile(path_regex),
                    method,
                    count,
                    status,
                    self._default_fault_body(status) if body is None else body,
                    dict(headers or {}),
                )
            )

    def delay_after_commit(
        self,
        path_regex: str,
        seconds: float,
        count: int | None = 1,
        *,
        method: str | None = None,
    ) -> None:
        """Apply the next ``count`` matching requests, then hold the answer ``seconds``.

        A client with a shorter read timeout times out although the write happened: the
        "unknown outcome" case. :meth:`stop` cuts pending holds short.
        """
        with self._lock:
            self._delays.append(Fault(re.compile(path_regex), method, count, seconds=seconds))

    def lose_answer_after_commit(
        self, path_regex: str, count: int | None = 1, *, method: str | None = None
    ) -> None:
        """Apply the next ``count`` matching requests, then close the connection unanswered.

        The client sees a dropped connection although the write happened: the "unknown
        outcome" case without waiting for a read timeout.
        """
        with self._lock:
            self._losses.append(Fault(re.compile(path_regex), method, count))

    def clear_faults(self) -> None:
        """Forget all pending :meth:`fail_next`, :meth:`delay_after_commit` and
        :meth:`lose_answer_after_commit` rules."""
        with self._lock:
            self._faults.clear()
            self._delays.clear()
            self._losses.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        """The first `fail_next` rule for this request, one use consumed; None if none."""
        with self._lock:
            return next((rule for rule in self._faults if rule.take(method, path)), None)

    def _take_delay(self, method: str, path: str) -> float:
        """Seconds of the first `delay_after_commit` rule for this request (0.0 if none)."""
        with self._lock:
            rule = next((rule for rule in self._delays if rule.take(method, path)), None)
            return rule.seconds if rule else 0.0

    def _take_loss(self, method: str, path: str) -> bool:
        """Whether a `lose_answer_after_commit` rule takes this request (one use consumed)."""
        with self._lock:
            return any(rule.take(method, path) for rule in self._losses)

    @staticmethod
    def _lose_answer(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        """Close the request's connection instead of answering (the WSGI app returns this)."""
        connection: socket.socket = environ["werkzeug.socket"]
        connection.shutdown(socket.SHUT_RDWR)
        start_response("500 Answer lost", [("Content-Length", "0")])
        return []

    @abstractmethod
    def _default_fault_body(self, status: int) -> Any:
        """The body `fail_next` sends when the test gives none."""
