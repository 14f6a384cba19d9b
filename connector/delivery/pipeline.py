"""Deliver one call to one target: claim → filter → match → render → write → record.

The pipeline is CRM-neutral: it knows adapters only through `connector.adapters.Adapter` and
the target's `DeliveryPolicy` (filters, matching, templates; see
`connector.delivery.planning`). It owns
the retry policy (exponential backoff with jitter, honouring a target's Retry-After, parking a
target that hit a daily limit, giving up after ``queue.give_up_after_hours``) and writes every
outcome to the ledger.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.adapters import (
    Adapter,
    Journal,
    PermanentError,
    RetryableError,
    TargetParked,
)
from connector.config.policy import DeliveryPolicy
from connector.config.sections import QueueConfig
from connector.delivery.filters import skip_reason
from connector.delivery.planning import plan_delivery
from connector.delivery.review import Review
from connector.ledger.ledger import Claim, LeaseLost, Ledger
from connector.ledger.tables import DEAD, DONE, PROCESSING, RETRYING, REVIEW, SKIPPED
from connector.payload import PayloadError, report_from_json
from connector.render import TemplateProblem

__all__ = ["DeliveryPipeline", "Outcome", "backoff_delay"]

log = logging.getLogger(__name__)

Schedule = Callable[[int, datetime], None]


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt."""

    delivery_id: int
    status: str
    detail: str = ""


def backoff_delay(
    attempt: int,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before attempt ``attempt + 1``.

    Exponential (`base` · 2^(attempt-1), at most `cap`) with "equal jitter" (half fixed, half
    random) so that many deliveries failing together do not retry together. A target's
    `retry_after` is a floor: we never come back earlier than it asked.
    """
    rng = rng or random.Random()
    exp = min(cap, base * (2 ** max(0, attempt - 1)))
    delay = exp / 2 + rng.uniform(0, exp / 2)
    if retry_after is not None:
        delay = max(delay, retry_after + rng.uniform(0, min(1.0, retry_after * 0.1)))
    return float(delay)


class DeliveryPipeline:
    """Runs delivery attempts for the configured targets against one ledger."""

    def __init__(
        self,
        ledger: Ledger,
        adapters: Mapping[str, Adapter],
        queue: QueueConfig,
        schedule: Schedule | None = None,
        policies: Mapping[str, DeliveryPolicy] | None = None,
    ) -> None:
        self.ledger = ledger
        self.adapters = adapters
        self.policies = dict(policies or {})
        self.queue = queue
        self.schedule = schedule or (lambda _id, _at: None)
        self.lease = timedelta(seconds=queue.lease_seconds)
        self.requeue_after = timedelta(seconds=queue.requeue_after_seconds)

    def process(self, delivery_id: int) -> Outcome | None:
        """Attempt delivery `delivery_id` if it is due and nobody else holds it.

        Returns ``None`` when there was nothing to do (already done, leased elsewhere, not due).
        Never raises for a delivery's own failure: every outcome is recorded in the ledger.
        """
        claim = self.ledger.claim(delivery_id, self.lease)
        if claim is None:
            return None
        try:
            return self._attempt(claim)
        except LeaseLost:
            # The attempt outlived its lease; another worker owns the delivery now.
            log.warning(
                "call %s → %s: lease lost during the attempt; left to its new holder",
                claim.call_id,
                claim.target,
            )
            return Outcome(delivery_id, PROCESSING, "lease lost")
        except Exception as exc:
            # A bug or an error type nobody classified: retry, but say what it was. The
            # message and traceback may quote call content, so only at DEBUG.
            log.error(
                "call %s → %s: unexpected %s", claim.call_id, claim.target, type(exc).__name__
            )
            log.debug("traceback", exc_info=True)
            return self._retry(claim, f"Unexpected {type(exc).__name__}", None)

    def _attempt(self, claim: Claim) -> Outcome:
        delivery_id = claim.delivery_id
        adapter = self.adapters.get(claim.target)
        if adapter is None:
            # The target was removed from the configuration after the call was accepted.
            self.ledger.fail(claim, f"Target {claim.target!r} is not configured any more.")
            return Outcome(delivery_id, DEAD, "target not configured")
        if claim.attempts > 1 and self._too_old(claim):
            # Attempts that never finished (a worker crashing on this delivery) end here too.
            return self._give_up(claim, "the previous attempt did not finish")

        parked = self.ledger.parked(claim.target)
        if parked is not None:
            until, reason = parked
            self.ledger.retry_later(
                claim,
                f"Target parked: {reason}",
                until,
                count_attempt=False,
                queued_until=until + self.requeue_after,
            )
            self.schedule(delivery_id, until)
            return Outcome(delivery_id, RETRYING, "target parked")

        try:
            report = report_from_json(claim.raw_body)
        except (PayloadError, ValueError) as exc:
            self.ledger.fail(claim, f"Stored body no longer parses: {exc}")
            return Outcome(delivery_id, DEAD, "stored body invalid")

        # Every journal entry also renews the lease: a long delivery that makes progress keeps it.
        journal = Journal(
            claim.refs,
            save=lambda key, value: self.ledger.record_ref(claim, key, value, renew=self.lease),
        )
        policy = self.policies.get(claim.target) or DeliveryPolicy()
        filtered = skip_reason(report, policy.filters, policy.defaults.region)
        if filtered is not None:
            self.ledger.complete(claim, journal.as_dict(), skipped_reason=filtered)
            log.info("call %s → %s: skipped (%s)", claim.call_id, claim.target, filtered)
            return Outcome(delivery_id, SKIPPED, filtered)
        try:
            plan = plan_delivery(report, policy, adapter, journal)
            if plan.review is not None:
                return self._hold(claim, journal.as_dict(), plan.review)
            if plan.job is None:
                reason = plan.skip_reason or "nothing to write"
                self.ledger.complete(claim, journal.as_dict(), skipped_reason=reason)
                log.info("call %s → %s: skipped (%s)", claim.call_id, claim.target, reason)
                return Outcome(delivery_id, SKIPPED, reason)
            result = adapter.write(plan.job, journal)
        except TargetParked as exc:
            self.ledger.park_target(claim.target, exc.until, str(exc))
            self.ledger.retry_later(
                claim,
                str(exc),
                exc.until,
                count_attempt=False,
                queued_until=exc.until + self.requeue_after,
            )
            self.schedule(delivery_id, exc.until)
            log.warning(
                "call %s → %s: target parked until %s: %s",
                claim.call_id,
                claim.target,
                exc.until.isoformat(),
                exc,
            )
            return Outcome(delivery_id, RETRYING, str(exc))
        except RetryableError as exc:
            return self._retry(claim, str(exc), exc.retry_after)
        except TemplateProblem as exc:
            self.ledger.fail(claim, f"Template error: {exc}")
            log.error(
                "call %s → %s: dead: template error in %s", claim.call_id, claim.target, exc.field
            )
            return Outcome(delivery_id, DEAD, str(exc))
        except PermanentError as exc:
            self.ledger.fail(claim, str(exc))
            log.error("call %s → %s: dead: %s", claim.call_id, claim.target, exc)
            return Outcome(delivery_id, DEAD, str(exc))

        if not self.ledger.complete(claim, {**journal.as_dict(), **result.refs}):
            raise LeaseLost(f"delivery {delivery_id}")
        log.info("call %s → %s: done (attempt %d)", claim.call_id, claim.target, claim.attempts)
        return Outcome(delivery_id, DONE)

    def _hold(self, claim: Claim, refs: dict[str, Any], review: Review) -> Outcome:
        """Hold the delivery in the review queue; at the deadline the fallback policy applies."""
        reason = f"Held for review ({review.reason})"
        self.ledger.hold_for_review(
            claim, refs, reason, review.deadline, queued_until=review.deadline + self.requeue_after
        )
        self.schedule(claim.delivery_id, review.deadline)
        log.info("call %s → %s: %s", claim.call_id, claim.target, reason)
        return Outcome(claim.delivery_id, REVIEW, reason)

    def _too_old(self, claim: Claim) -> bool:
        age = datetime.now(UTC) - claim.retry_since
        return age > timedelta(hours=self.queue.give_up_after_hours)

    def _give_up(self, claim: Claim, error: str) -> Outcome:
        reason = f"Gave up after {claim.attempts} attempts: {error}"
        self.ledger.fail(claim, reason)
        log.error("call %s → %s: dead: %s", claim.call_id, claim.target, reason)
        return Outcome(claim.delivery_id, DEAD, reason)

    def _retry(self, claim: Claim, error: str, retry_after: float | None) -> Outcome:
        now = datetime.now(UTC)
        if self._too_old(claim):
            return self._give_up(claim, error)
        delay = backoff_delay(
            claim.attempts, self.queue.retry_base_seconds, self.queue.retry_max_seconds, retry_after
        )
        at = now + timedelta(seconds=delay)
        self.ledger.retry_later(claim, error, at, queued_until=at + self.requeue_after)
        self.schedule(claim.delivery_id, at)
        log.warning(
            "call %s → %s: attempt %d failed (%s); next in %.0fs",
            claim.call_id,
            claim.target,
            claim.attempts,
            error,
            delay,
        )
        return Outcome(claim.delivery_id, RETRYING, error)
