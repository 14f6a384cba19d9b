"""The delivery queue (Huey) and the sweeper that makes it safe to lose queue messages.

Huey carries hints only: "delivery 42 may be due". A message lost with a killed worker, a wiped
queue file or a Redis restart costs nothing but time, because the sweeper periodically re-enqueues
every delivery the ledger says is due or whose lease expired. The queue store therefore does not
need its own fsync: SQLite queues run with ``synchronous=NORMAL`` (safe against corruption, may
forget the last messages on power loss), and the ledger (``synchronous=FULL``) is the truth.
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

__all__ = ["DeliveryQueue", "Sweeper", "make_huey"]

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
            self._pipeline.process(delivery_id)

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

    def enqueue_all(self, delivery_ids: list[int]) -> None:
        """Enqueue several deliveries; a failure is logged, the sweeper will find them anyway."""
        try:
            for delivery_id in delivery_ids:
                self.enqueue(delivery_id)
        except Exception:
            log.warning(
                "Could not enqueue deliveries; the sweeper will pick them up", exc_info=True
            )

    def ping(self) -> None:
        """Raise if the queue store cannot be reached."""
        self.huey.storage.queue_size()

    def pending(self) -> int:
        """Messages waiting in the queue."""
        return int(self.huey.pending_count())


class Sweeper(threading.Thread):
    """Re-enqueues, every `interval` seconds, deliveries that are due or whose lease expired."""

    def __init__(self, ledger: Ledger, queue: DeliveryQueue, interval: float) -> None:
        super().__init__(name="sweeper", daemon=True)
        self.ledger = ledger
        self.queue = queue
        self.interval = interval
        self.stopped = threading.Event()

    def sweep(self) -> int:
        """One pass; returns how many deliveries were enqueued."""
        # Fresh pending rows were enqueued by the web side; give them one interval first.
        due = self.ledger.due(grace=timedelta(seconds=self.interval))
        for delivery_id in due:
            self.queue.enqueue(delivery_id)
        if due:
            log.info("sweeper re-enqueued %d deliveries", len(due))
        return len(due)

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.sweep()
            except Exception:
                log.warning("sweep failed; trying again in %.0fs", self.interval, exc_info=True)
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        """Stop after the current pass."""
        self.stopped.set()
