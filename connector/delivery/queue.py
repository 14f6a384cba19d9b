"""The delivery queue (Huey): messages that ask a worker thread to look at one delivery.

The web side only commits to the ledger (a transactional outbox); `connector.delivery.relay`
turns due deliveries into messages here, when they are due (no delayed messages: the ledger is
the only clock). Huey spreads them over the worker threads. Messages are hints only ("delivery 42
may be due"): one lost with a killed worker, a wiped queue file or a Redis restart is sent again
by the relay. The queue store therefore needs no fsync of its own: SQLite
queues run with ``synchronous=NORMAL``, and the ledger (``synchronous=FULL``) is the truth.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from huey import Huey, MemoryHuey, PriorityRedisHuey
from huey.storage import SqliteStorage

__all__ = ["DeliveryQueue", "make_huey"]

log = logging.getLogger(__name__)

HUEY_NAME = "sipgate-crm"
AHEAD = 10  # Huey priority of retries and recovered deliveries (higher runs first)


class _QueueStorage(SqliteStorage):  # type: ignore[misc]
    """SqliteStorage with WAL and ``synchronous=NORMAL``: durable enough for hints, and fast."""

    def _create_connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection = super()._create_connection()
        conn.execute("pragma synchronous=NORMAL")
        return conn


def make_huey(url: str) -> Huey:
    """A Huey instance for ``sqlite:///FILE`` (default), ``redis://…`` or ``memory://`` (tests)."""
    if url.startswith(("redis://", "rediss://")):
        return PriorityRedisHuey(HUEY_NAME, url=url, results=False, utc=True)
    if url.startswith("memory://"):
        return MemoryHuey(HUEY_NAME, results=False, utc=True)
    path = url.split("///", 1)[1]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return Huey(
        HUEY_NAME, results=False, utc=True, storage_class=_QueueStorage, filename=path, timeout=15
    )


class DeliveryQueue:
    """The service's Huey task: anyone may enqueue; a worker process `serve`s the messages."""

    def __init__(self, huey: Huey) -> None:
        self.huey = huey
        self._deliver: Callable[[int], object] | None = None

        def deliver(delivery_id: int) -> None:
            if self._deliver is None:
                raise RuntimeError("This process does not deliver (not a worker).")
            try:
                self._deliver(delivery_id)
            except Exception as exc:
                # The ledger is unreachable or similar: the delivery stays due or leased and the
                # relay sends it again. Huey would log the traceback, which may quote call data.
                log.error("delivery %d: %s; it will be retried", delivery_id, type(exc).__name__)
                log.debug("traceback", exc_info=True)

        self._task: Any = huey.task(name="deliver")(deliver)

    def serve(self, deliver: Callable[[int], object]) -> None:
        """Make this process a worker: each message runs ``deliver(delivery_id)``."""
        self._deliver = deliver

    def enqueue(self, delivery_id: int, *, ahead: bool = False) -> None:
        """Ask a worker to look at `delivery_id` now; `ahead`: before the messages waiting."""
        self._task(delivery_id, priority=AHEAD if ahead else 0)

    def ping(self) -> None:
        """Raise if the queue store cannot be reached."""
        self.huey.storage.queue_size()

    def pending(self) -> int:
        """Messages waiting in the queue."""
        return int(self.huey.pending_count())
