"""Before a body is parsed: who may send (address, secret) and a bounded, deadlined body read."""

from __future__ import annotations

import heapq
import hmac
import ipaddress
import itertools
import socket
import threading
import time
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from gunicorn.http.errors import NoMoreData, ParseException
from werkzeug.exceptions import (
    BadRequest,
    Forbidden,
    LengthRequired,
    RequestEntityTooLarge,
    RequestTimeout,
)

from connector.config.sections import IPNetwork, ServerConfig

__all__ = [
    "ReadDeadlines",
    "SenderRejected",
    "client_address",
    "in_networks",
    "read_body",
    "verify_sender",
]

_CHUNK = 64 * 1024
#: How late past its deadline a body may be cut off (see `ReadDeadlines`).
_TICK_SECONDS = 0.1
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class SenderRejected(Forbidden):
    """The request does not come from an allowed sender; answered 403 without detail."""

    description = "Forbidden."


def client_address(remote_addr: str | None) -> IPAddress | None:
    """`remote_addr` as an address (an IPv4 sender on a dual-stack socket as IPv4), or ``None``."""
    try:
        address = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def in_networks(remote_addr: str | None, networks: Iterable[IPNetwork]) -> bool:
    """Whether `remote_addr` is inside one of `networks` (never for an unparsable address)."""
    address = client_address(remote_addr)
    return address is not None and any(address in network for network in networks)


def verify_sender(
    server: ServerConfig,
    remote_addr: str | None,
    path_secret: str | None,
    authorization: str | None,
) -> None:
    """Raise `SenderRejected` unless the sender's address and secret are acceptable.

    `remote_addr` must be inside ``allowed_ips`` (when the list is not empty). When a ``secret``
    is configured, it must arrive as the last path segment or as ``Authorization: Bearer …``;
    both comparisons take constant time.
    """
    if server.allowed_ips and not in_networks(remote_addr, server.allowed_ips):
        raise SenderRejected()
    if server.secret is not None:
        expected = server.secret.encode()
        offered = [path_secret or ""]
        if authorization and authorization[:7].lower() == "bearer ":
            offered.append(authorization[7:].strip())
        # Evaluate every candidate so timing does not reveal which one was tried.
        matches = [hmac.compare_digest(expected, candidate.encode()) for candidate in offered]
        if not any(matches):
            raise SenderRejected()
    elif path_secret is not None:
        raise SenderRejected()


@dataclass(order=True)
class _Watch:
    due: float
    seq: int
    sock: socket.socket | None = field(compare=False)
    expired: bool = field(default=False, compare=False)


class ReadDeadlines:
    """Cuts off request bodies that are still arriving when their deadline passes.

    One watchdog thread per process keeps the deadlines in a heap; at a deadline it shuts the
    connection's read side down, so the worker blocked in ``recv`` wakes at once (whether it
    is a sync worker or one thread of a gthread worker). Arming costs a heap push, not a thread,
    and the watchdog wakes at most every `_TICK_SECONDS` (so a cut-off may come that much late).
    """

    def __init__(self) -> None:
        self._heap: list[_Watch] = []
        self._wake = threading.Condition()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, sock: socket.socket, seconds: float) -> _Watch:
        """Watch `sock` for `seconds`; pass the result to `disarm` once the body is read."""
        watch = _Watch(time.monotonic() + seconds, next(self._seq), sock)
        with self._wake:
            if self._thread is None or not self._thread.is_alive():  # also after a fork
                self._thread = threading.Thread(
                    target=self._run, name="body-read-deadlines", daemon=True
                )
                self._thread.start()
            heapq.heappush(self._heap, watch)
            if self._heap[0] is watch:
                self._wake.notify()
        return watch

    @staticmethod
    def disarm(watch: _Watch) -> bool:
        """Stop watching; True when the deadline had already cut the read off."""
        watch.sock = None
        return watch.expired

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap or self._heap[0].due > time.monotonic():
                    timeout = self._heap[0].due - time.monotonic() if self._heap else None
                    self._wake.wait(timeout)
                now = time.monotonic()
                cut: list[socket.socket] = []
                while self._heap and self._heap[0].due <= now:
                    watch = heapq.heappop(self._heap)
                    if watch.sock is not None:  # else read in time and disarmed
                        watch.expired = True
                        cut.append(watch.sock)
            for sock in cut:
                with suppress(OSError):  # the client may have gone away by itself
                    sock.shutdown(socket.SHUT_RD)
            # Every body leaves a watch behind until its deadline: waking for each one would
            # cost a thread switch per request, so deadlines are kept to the next tick.
            time.sleep(_TICK_SECONDS)


_DEADLINES = ReadDeadlines()


def read_body(environ: dict[str, Any], limit: int, deadline_seconds: float | None = None) -> bytes:
    """Read the whole request body, refusing more than `limit` bytes with 413.

    Works for Content-Length and for ``Transfer-Encoding: chunked`` bodies (which the server
    de-chunks and marks with ``wsgi.input_terminated``). We read ``limit + 1`` bytes ourselves:
    Werkzeug's own limit would silently truncate an oversized chunked body. Under gunicorn, a
    body not complete within `deadline_seconds` is answered 408, so a client trickling bytes
    cannot hold a worker for long.
    """
    stream = environ["wsgi.input"]
    raw_length = environ.get("CONTENT_LENGTH")
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if raw_length and not chunked:
        try:
            length = int(raw_length)
        except ValueError as exc:
            raise BadRequest("Invalid Content-Length.") from exc
        if length > limit:
            raise RequestEntityTooLarge(f"Body larger than {limit} bytes.")
        to_read = length
    elif chunked or environ.get("wsgi.input_terminated"):
        if not environ.get("wsgi.input_terminated"):
            raise LengthRequired("This server cannot read chunked bodies.")
        to_read = limit + 1
    else:
        return b""
    sock = environ.get("gunicorn.socket")
    watch = _DEADLINES.arm(sock, deadline_seconds) if sock and deadline_seconds else None
    parts: list[bytes] = []
    size = 0
    failure: Exception | None = None
    try:
        while size < to_read:
            part = stream.read(min(_CHUNK, to_read - size))
            if not part:
                break
            parts.append(part)
            size += len(part)
    except (ParseException, NoMoreData, OSError) as exc:  # malformed, truncated or cut off
        failure = exc
    cut_off = watch is not None and _DEADLINES.disarm(watch)
    short = bool(raw_length) and not chunked and size < to_read
    if cut_off and (failure is not None or short):
        raise RequestTimeout(
            f"The body did not arrive within {deadline_seconds:g} seconds."
        ) from failure
    if failure is not None:
        raise BadRequest("The body's chunked encoding is malformed or incomplete.") from failure
    if size > limit:
        raise RequestEntityTooLarge(f"Body larger than {limit} bytes.")
    if short:
        raise BadRequest("Body shorter than its Content-Length.")
    return b"".join(parts)
