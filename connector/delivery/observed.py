"""Counting delivery attempts for Prometheus: outcome by target, and how long each took."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import select

from connector.delivery.pipeline import Outcome
from connector.ledger.ledger import Ledger
from connector.ledger.tables import DEAD, DONE, PROCESSING, RETRYING, SKIPPED, deliveries

__all__ = ["observed"]

_OUTCOMES = {DONE: "done", SKIPPED: "skipped", RETRYING: "retry", DEAD: "dead"}


def observed(
    ledger: Ledger, process: Callable[[int], Outcome | None]
) -> Callable[[int], Outcome | None]:
    """`process`, counting each attempt in ``sipgate_crm_deliveries_total`` and the histogram.

    Outcomes: done, skipped, retry, parked (a retry because the target is parked), dead and
    lease_lost. A message that found nothing to do is not an attempt and is not counted.
    """
    from connector.metrics.families import DELIVERIES, DELIVERY_SECONDS

    def run(delivery_id: int) -> Outcome | None:
        started = time.monotonic()
        outcome = process(delivery_id)
        if outcome is None:
            return None
        with ledger.connection() as conn:
            target = conn.execute(
                select(deliveries.c.target).where(deliveries.c.id == delivery_id)
            ).scalar()
        if target is None:  # erased meanwhile
            return outcome
        name = "lease_lost" if outcome.status == PROCESSING else _OUTCOMES[outcome.status]
        if outcome.status == RETRYING and ledger.parked(target) is not None:
            name = "parked"
        DELIVERIES.labels(target=target, outcome=name).inc()
        DELIVERY_SECONDS.labels(target=target).observe(time.monotonic() - started)
        return outcome

    return run
