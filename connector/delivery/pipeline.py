"""Deliver one call to one target: claim → filter → match → render → write → record.

The pipeline is CRM-neutral: it knows adapters only through `connector.adapters.Adapter` and
the target's `DeliveryPolicy` (filters, matching, templates; see
`connector.delivery.planning`). It owns
the retry policy (exponential backoff with jitter, honouring a target's Retry-After, parking a
target that hit a daily limit, giving up after ``queue.give_up_after_hours``) and writes every
outcome to the ledger. Time comes from the ledger's clock, and a retry is only a due time in the
ledger: the relay starts it when it is due.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
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
from connector.delivery.leases import HeldLease, LeaseKeeper
from connector.delivery.planning import plan_delivery
from connector.delivery.review import Review
from connector.ledger.ledger import UNEXPECTED_LIMIT, Claim, LeaseLost, Ledger
from connector.ledger.tables import DEAD, DONE, PROCESSING, RETRYING, REVIEW, SKIPPED
from connector.payload import PayloadError, report_from_json
from connector.render.sandbox import TemplateProblem

__all__ = ["DeliveryPipeline", "Outcome", "backoff_delay"]

log = logging.getLogger(__name__)


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


class _LeasedJournal(Journal):
    """The journal of an attempt: every read and write first checks that the lease is ours, and
    every write renews it."""

    def __init__(self, pipeline: DeliveryPipeline, held: HeldLease) -> None:
        super().__init__(held.claim.refs, save=self._save_under_lease)
        self.pipeline = pipeline
        self.held = held

    def get(self, key: str) -> Any:
        # Adapters look in the journal before creating anything: the last moment to stop.
        self.held.check(self.pipeline.ledger.clock())
        return super().get(key)

    def _save_under_lease(self, key: str, value: Any) -> None:
        ledger, lease = self.pipeline.ledger, self.pipeline.lease
        started = ledger.clock()
        self.held.check(started)
        ledger.record_ref(self.held.claim, key, value, renew=lease)
        self.held.renewed(started, lease)


class DeliveryPipeline:
    """Runs delivery attempts for the configured targets against one ledger.

    `leases` renews the leases of running attempts; the worker starts it as a thread (without
    it, an attempt keeps its lease only through its journal steps).
    """

    def __init__(
        self,
        ledger: Ledger,
        adapters: Mapping[str, Adapter],
        queue: QueueConfig,
        policies: Mapping[str, DeliveryPolicy] | None = None,
    ) -> None:
        self.ledger = ledger
        self.adapters = adapters
        self.policies = dict(policies or {})
        self.queue = queue
        self.lease = timedelta(seconds=queue.lease_seconds)
        self.leases = LeaseKeeper(ledger, self.lease)

    def process(self, delivery_id: int) -> Outcome | None:
        """Attempt delivery `delivery_id` if it is due and nobody else holds it.

        Returns ``None`` when there was nothing to do (already done, leased elsewhere, not due).
        Never raises for a delivery's own failure: every outcome is recorded in the ledger.
        """
        taken_at = self.ledger.clock()
        claim = self.ledger.claim(delivery_id, self.lease)
        if claim is None:
            return None
        held = self.leases.hold(claim, taken_at)
        try:
            return self._attempt(held)
        except LeaseLost:
            # The attempt outlived its lease; another worker owns the delivery now.
            log.warning(
                "call %s → %s: lease lost during the attempt; left to its new holder",
                claim.call_id,
                claim.target,
            )
            return Outcome(delivery_id, PROCESSING, "lease lost")
        except Exception as exc:
            # A bug or an error type nobody classified: retry a few times, but say what it was.
            # The message and traceback may quote call content, so only at DEBUG.
            log.error(
                "call %s → %s: unexpected %s", claim.call_id, claim.target, type(exc).__name__
            )
            log.debug("traceback", exc_info=True)
            return self._unexpected(claim, type(exc).__name__)
        finally:
            self.leases.release(held)

    def _attempt(self, held: HeldLease) -> Outcome:
        claim = held.claim
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
            self.ledger.retry_later(claim, f"Target parked: {reason}", until, count_attempt=False)
            return Outcome(delivery_id, RETRYING, "target parked")

        try:
            report = report_from_json(claim.raw_body)
        except (PayloadError, ValueError) as exc:
            self.ledger.fail(claim, f"Stored body no longer parses: {exc}")
            return Outcome(delivery_id, DEAD, "stored body invalid")

        # Every journal entry also renews the lease: a long delivery that makes progress keeps it.
        journal = _LeasedJournal(self, held)
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
            self.ledger.retry_later(claim, str(exc), exc.until, count_attempt=False)
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
        # Due again at the deadline: the relay sends it then, like any due delivery.
        self.ledger.hold_for_review(claim, refs, reason, review.deadline)
        log.info("call %s → %s: %s", claim.call_id, claim.target, reason)
        return Outcome(claim.delivery_id, REVIEW, reason)

    def _too_old(self, claim: Claim) -> bool:
        age = self.ledger.clock() - claim.retry_since
        return age > timedelta(hours=self.queue.give_up_after_hours)

    def _give_up(self, claim: Claim, error: str) -> Outcome:
        reason = f"Gave up after {claim.attempts} attempts: {error}"
        self.ledger.fail(claim, reason)
        log.error("call %s → %s: dead: %s", claim.call_id, claim.target, reason)
        return Outcome(claim.delivery_id, DEAD, reason)

    def _unexpected(self, claim: Claim, error_type: str) -> Outcome:
        failures = claim.unexpected_failures + 1
        if failures < UNEXPECTED_LIMIT:
            return self._retry(claim, f"Unexpected {error_type}", None, unexpected=True)
        reason = (
            f"Unexpected {error_type} in {failures} attempts (a bug or an unclassified error; "
            "the worker log has the traceback at DEBUG); replay it after a fix"
        )
        self.ledger.fail(claim, reason)
        log.error("call %s → %s: dead: %s", claim.call_id, claim.target, reason)
        return Outcome(claim.delivery_id, DEAD, reason)

    def _retry(
        self, claim: Claim, error: str, retry_after: float | None, *, unexpected: bool = False
    ) -> Outcome:
        now = self.ledger.clock()
        if self._too_old(claim):
            return self._give_up(claim, error)
        delay = backoff_delay(
            claim.attempts, self.queue.retry_base_seconds, self.queue.retry_max_seconds, retry_after
        )
        at = now + timedelta(seconds=delay)
        self.ledger.retry_later(claim, error, at, unexpected=unexpected)
        log.warning(
            "call %s → %s: attempt %d failed (%s); next in %.0fs",
            claim.call_id,
            claim.target,
            claim.attempts,
            error,
            delay,
        )
        return Outcome(claim.delivery_id, RETRYING, error)
