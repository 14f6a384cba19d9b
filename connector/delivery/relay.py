"""The relay: turns due deliveries in the ledger (the outbox) into queue messages.

The worker's `Relay` polls the ledger every ``queue.poll_interval_seconds`` and sends a message
for every delivery that is due or whose lease expired, so a message lost with a killed worker, a
wiped queue file or a Redis restart is sent again after ``queue.requeue_after_seconds``.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from connector.delivery.queue import DeliveryQueue
from connector.ledger.ledger import Ledger

__all__ = ["Relay"]

log = logging.getLogger(__name__)


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
