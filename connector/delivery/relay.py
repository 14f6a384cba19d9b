"""The relay: turns due deliveries in the ledger (the outbox) into queue messages.

The ledger is the only clock: retries are due times in the ledger, never delayed queue messages.
The worker's `Relay` sends a message for every delivery that is due or whose lease expired, then
sleeps until the next delivery falls due (`Ledger.next_due`), at most
``queue.poll_interval_seconds`` (new calls and other workers' retries are found by polling). A
message found early, lost with a killed worker, a wiped queue file or a Redis restart costs no
wait: a claim that finds nothing due clears the delivery's "queued" mark, and when the queue is
empty every due delivery is sent again, whatever its mark says. Only messages lost while others
still wait in the queue are re-sent after ``queue.requeue_after_seconds``. Retries and
deliveries a dead worker held go ahead of new calls in the queue, so a backlog of new calls does
not make them late.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from connector.delivery.queue import DeliveryQueue
from connector.ledger.ledger import Ledger

__all__ = ["Relay"]

log = logging.getLogger(__name__)

BATCH = 200


class Relay(threading.Thread):
    """Sends queue messages for due deliveries, until stopped (see the module docstring)."""

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
        resend = self.queue.pending() == 0  # no message waits: every "queued" mark is stale
        sent = 0
        while True:
            due = self.ledger.take_due(self.requeue_after, BATCH, resend=resend)
            for delivery in due:
                self.queue.enqueue(delivery.delivery_id, ahead=delivery.again)
            sent += len(due)
            if len(due) < BATCH or self.stopped.is_set():
                return sent
            resend = False  # what we just sent is in the queue now

    def pause(self) -> float:
        """Seconds until the next pass: when the next delivery falls due, at most `interval`."""
        upcoming = self.ledger.next_due()
        if upcoming is None:
            return self.interval
        wait = (upcoming - self.ledger.clock()).total_seconds()
        return min(self.interval, max(0.01, wait))

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.relay()
                pause = self.pause()
            except Exception:
                log.warning("relay pass failed; trying again", exc_info=True)
                pause = self.interval
            self.stopped.wait(pause)

    def stop(self) -> None:
        """Stop after the current pass."""
        self.stopped.set()
