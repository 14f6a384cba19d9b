"""Watching delivery attempts: Prometheus counts and the log context of each attempt."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import select

from connector.delivery.pipeline import Outcome
from connector.ledger.ledger import Ledger
from connector.ledger.tables import (
    DEAD,
    DONE,
    PROCESSING,
    RETRYING,
    REVIEW,
    SKIPPED,
    calls,
    deliveries,
)
from connector.logformat import log_context

__all__ = ["observed"]

_OUTCOMES = {
    DONE: "done",
    SKIPPED: "skipped",
    RETRYING: "retry",
    DEAD: "dead",
    REVIEW: "review",
}


def observed(
    ledger: Ledger, process: Callable[[int], Outcome | None]
) -> Callable[[int], Outcome | None]:
    """`process`, counting each attempt in ``sipgate_crm_deliveries_total`` and the histogram.

    Outcomes: done, skipped, retry, parked (a retry because the target is parked), dead,
    review (held for a person) and lease_lost. A message that found nothing to do is not an
    attempt and is not counted. Lines logged during an attempt carry its ``delivery_id``,
    ``target`` and ``call_id``.
    """
    from connector.metrics.families import DELIVERIES, DELIVERY_SECONDS

    def run(delivery_id: int) -> Outcome | None:
        with ledger.connection() as conn:
            row = conn.execute(
                select(deliveries.c.target, calls.c.call_id)
                .join(calls, calls.c.id == deliveries.c.call_pk)
                .where(deliveries.c.id == delivery_id)
            ).first()
        if row is None:  # erased meanwhile
            return process(delivery_id)
        started = time.monotonic()
        with log_context(delivery_id=delivery_id, target=row.target, call_id=row.call_id):
            outcome = process(delivery_id)
        if outcome is None:
            return None
        name = "lease_lost" if outcome.status == PROCESSING else _OUTCOMES[outcome.status]
        if outcome.status == RETRYING and ledger.parked(row.target) is not None:
            name = "parked"
        DELIVERIES.labels(target=row.target, outcome=name).inc()
        DELIVERY_SECONDS.labels(target=row.target).observe(time.monotonic() - started)
        return outcome

    return run
