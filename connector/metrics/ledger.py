"""Gauges read from the ledger at scrape time, so every instance reports the same truth."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from connector.ledger.ledger import Ledger
from connector.ledger.tables import PENDING, PROCESSING, RETRYING, STATUSES, calls, deliveries

__all__ = ["LedgerCollector"]

UNFINISHED = (PENDING, PROCESSING, RETRYING)
REVIEW = ("unmatched", "ambiguous")


def _utc(value: object) -> datetime:
    """A timestamp from an aggregate: SQLite hands those back as naive UTC text."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class LedgerCollector(Collector):
    """Deliveries by target and state, oldest unfinished age, review queue, parked targets."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = datetime.now(UTC)
        by_state = GaugeMetricFamily(
            "sipgate_crm_ledger_deliveries",
            "Deliveries in the ledger by target and state.",
            labels=["target", "state"],
        )
        oldest = GaugeMetricFamily(
            "sipgate_crm_ledger_oldest_unfinished_age_seconds",
            "Age of the oldest delivery still pending, running or retrying, by target.",
            labels=["target"],
        )
        review = GaugeMetricFamily(
            "sipgate_crm_ledger_review_queue_length",
            "Delivered calls that matched no CRM record or several (status --unmatched).",
            labels=["target"],
        )
        parked = GaugeMetricFamily(
            "sipgate_crm_target_parked",
            "1 while a target is parked (a CRM's daily limit), else 0.",
            labels=["target"],
        )
        last = GaugeMetricFamily(
            "sipgate_crm_ledger_last_webhook_timestamp_seconds",
            "When the newest call in the ledger was received (Unix time; 0: none yet).",
        )
        match_status = deliveries.c.refs["match"]["status"].as_string()
        with self.ledger.connection() as conn:
            counts = conn.execute(
                select(deliveries.c.target, deliveries.c.status, func.count()).group_by(
                    deliveries.c.target, deliveries.c.status
                )
            ).all()
            ages = conn.execute(
                select(deliveries.c.target, func.min(deliveries.c.created_at))
                .where(deliveries.c.status.in_(UNFINISHED))
                .group_by(deliveries.c.target)
            ).all()
            reviews: dict[str, int] = dict(
                conn.execute(
                    select(deliveries.c.target, func.count())
                    .where(match_status.in_(REVIEW))
                    .group_by(deliveries.c.target)
                ).all()
            )
            newest = conn.execute(select(func.max(calls.c.received_at))).scalar()
        seen: dict[str, dict[str, int]] = {}
        for target, status, n in counts:
            seen.setdefault(target, dict.fromkeys(STATUSES, 0))[status] = int(n)
        for target, states in sorted(seen.items()):
            for status, n in states.items():
                by_state.add_metric([target, status], n)
            review.add_metric([target], int(reviews.get(target, 0)))
        for target, created in ages:
            oldest.add_metric([target], max(0.0, (now - _utc(created)).total_seconds()))
        parked_now = self.ledger.parked_targets()
        for target in sorted(set(seen) | set(parked_now)):
            parked.add_metric([target], 1.0 if target in parked_now else 0.0)
        last.add_metric([], _utc(newest).timestamp() if newest is not None else 0.0)
        yield from (by_state, oldest, review, parked, last)
