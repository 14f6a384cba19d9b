"""The delivery queue (Huey) and the relay that feeds it from the ledger.

The web side only commits to the ledger (a transactional outbox). The worker's `Relay` polls the
ledger every ``queue.poll_interval_seconds`` and sends a Huey message for every delivery that is
due or whose lease expired; Huey spreads them over the worker threads and processes and holds
retries until their time. Messages are hints only ("delivery 42 may be due"): one lost with a
killed worker, a wiped queue file or a Redis restart is sent again after
``queue.requeue_after_seconds``. The queue store therefore needs no fsync of its own: SQLite
queues run with ``synchronous=NORMAL``, and the ledger (``synchronous=FULL``) is the truth.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from huey import Huey, MemoryHuey, RedisHuey
from huey.storage import SqliteStorage

from connector.ledger import Ledger
from connector.pipeline import DeliveryPipeline

__all__ = ["DeliveryQueue", "Relay", "make_huey"]

log = logging.getLogger(__name__)

HUEY_NAME = "sipgate-crm"


class _QueueStorage(SqliteStorage):  # type: ignore[misc]
    """SqliteStorage with WAL and ``synchronous=NORMAL``: durable enough for hints, and fast."""

    def _create_connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection = super()._create_connection()
        conn.execute("pragma synchronous=NORMAL")
        return conn


def make_huey(url: str) -> Huey:
    """A Huey instance for ``sqlite:///FILE`` (default), ``redis://…`` or ``memory://`` (tests)."""
    if url.startswith(("redis://", "rediss://")):
        return RedisHuey(HUEY_NAME, url=url, results=False, utc=True)
    if url.startswith("memory://"):
        return MemoryHuey(HUEY_NAME, results=False, utc=True)
    path = url.split("///", 1)[1]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return Huey(
        HUEY_NAME, results=False, utc=True, storage_class=_QueueStorage, filename=path, timeout=15
    )


class DeliveryQueue:
    """The service's Huey tasks: the web side enqueues; a worker binds a pipeline and runs them."""

    def __init__(self, huey: Huey) -> None:
        self.huey = huey
        self._pipeline: DeliveryPipeline | None = None

        def deliver(delivery_id: int) -> None:
            if self._pipeline is None:
                raise RuntimeError("This process has no delivery pipeline (not a worker).")
            try:
                self._pipeline.process(delivery_id)
            except Exception as exc:
                # The ledger is unreachable or similar: the delivery stays due or leased and the
                # relay sends it again. Huey would log the traceback, which may quote call data.
                log.error("delivery %d: %s; it will be retried", delivery_id, type(exc).__name__)
                log.debug("traceback", exc_info=True)

        self._task: Any = huey.task(name="deliver")(deliver)

    def bind(self, pipeline: DeliveryPipeline) -> None:
        """Make this process a worker: tasks run `pipeline`."""
        self._pipeline = pipeline
        pipeline.schedule = self.enqueue

    def enqueue(self, delivery_id: int, at: datetime | None = None) -> None:
        """Ask a worker to look at `delivery_id` now, or at `at`."""
        if at is None or at <= datetime.now(UTC):
            self._task(delivery_id)
        else:
            self._task.schedule(args=(delivery_id,), eta=at.astimezone(UTC).replace(tzinfo=None))

    def ping(self) -> None:
        """Raise if the queue store cannot be reached."""
        self.huey.storage.queue_size()

    def pending(self) -> int:
        """Messages waiting in the queue."""
        return int(self.huey.pending_count())


class Relay(threading.Thread):
    """Sends queue messages for due deliveries, every `interval` seconds, until stopped."""

    def __init__(
        self, ledger: Ledger, queue: DeliveryQueue, interval: float, requeue_after: timedelta
    ) -> None:
        super().__init__(name="relay", daemon=True)
        self.ledger = ledger
        self.queue = queue
        self.interval = interval
        self.requeue_after = requeue_after
        self.stopped = threading.Event()

    def relay(self) -> int:
        """One pass; returns how many messages were sent."""
        sent = 0
        while True:
            due = self.ledger.take_due(self.requeue_after)
            for delivery_id in due:
                self.queue.enqueue(delivery_id)
            sent += len(due)
            if len(due) < 200 or self.stopped.is_set():
                return sent

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.relay()
            except Exception:
                log.warning("relay pass failed; trying again", exc_info=True)
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        """Stop after the current pass."""
        self.stopped.set()
