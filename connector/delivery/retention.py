"""Retention and erasure across the ledger and the targets that store calls themselves.

The worker's `RetentionWorker` applies ``retention`` (ledger) and each database target's
``retention_days`` every ``retention.interval_seconds``; ``sipgate-crm purge`` uses `purge_before`
and `purge_call`. CRM records are not touched: `purge_call` names them for the operator.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from connector.config.sections import RetentionConfig
from connector.delivery.alerts import forget_resolved
from connector.ledger.ledger import Ledger
from connector.ledger.retention import ErasedCall, erase_call, remove_calls, remove_content

__all__ = [
    "Purged",
    "RetainingTarget",
    "RetentionWorker",
    "apply_retention",
    "purge_before",
    "purge_call",
    "retaining_targets",
]

log = logging.getLogger(__name__)


@runtime_checkable
class RetainingTarget(Protocol):
    """A target that keeps calls in storage of its own (the ``database`` target)."""

    def erase_call(self, call_id: str) -> int:
        """Delete `call_id`; how many calls were deleted."""

    def erase_before(self, before: datetime) -> int:
        """Delete calls that started before `before`; how many."""

    def remove_expired(self, now: datetime) -> int:
        """Apply the target's own retention period; how many calls were deleted."""


def retaining_targets(adapters: Mapping[str, object]) -> dict[str, RetainingTarget]:
    """The adapters among `adapters` that store calls themselves, by target name."""
    return {name: a for name, a in adapters.items() if isinstance(a, RetainingTarget)}


@dataclass(frozen=True)
class Purged:
    """What one retention pass or purge removed (`memos`: alert memos no longer needed)."""

    content: int = 0
    calls: int = 0
    memos: int = 0
    targets: dict[str, int] = field(default_factory=dict)
    erased: ErasedCall | None = None


def apply_retention(
    ledger: Ledger,
    policy: RetentionConfig,
    targets: Mapping[str, RetainingTarget],
    now: datetime | None = None,
) -> Purged:
    """One pass of the configured retention over the ledger and the retaining targets; also
    forgets the alert memos of deliveries that are no longer dead (`forget_resolved`)."""
    now = now or datetime.now(UTC)
    content = (
        remove_content(ledger, now - timedelta(days=policy.content_days))
        if policy.content_days
        else 0
    )
    calls = (
        remove_calls(ledger, now - timedelta(days=policy.metadata_days))
        if policy.metadata_days
        else 0
    )
    removed = {name: target.remove_expired(now) for name, target in targets.items()}
    return Purged(content=content, calls=calls, memos=forget_resolved(ledger), targets=removed)


def purge_before(
    ledger: Ledger, targets: Mapping[str, RetainingTarget], before: datetime
) -> Purged:
    """Remove every call received (ledger) or started (targets) before `before`."""
    return Purged(
        calls=remove_calls(ledger, before),
        targets={name: target.erase_before(before) for name, target in targets.items()},
    )


def purge_call(ledger: Ledger, targets: Mapping[str, RetainingTarget], call_id: str) -> Purged:
    """Erase one call from the ledger and the retaining targets (the right to erasure)."""
    erased = erase_call(ledger, call_id)
    return Purged(
        calls=1 if erased else 0,
        targets={name: target.erase_call(call_id) for name, target in targets.items()},
        erased=erased,
    )


class RetentionWorker(threading.Thread):
    """Applies the retention policy every ``interval_seconds`` until stopped."""

    def __init__(
        self, ledger: Ledger, policy: RetentionConfig, targets: Mapping[str, RetainingTarget]
    ) -> None:
        super().__init__(name="retention", daemon=True)
        self.ledger = ledger
        self.policy = policy
        self.targets = dict(targets)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                purged = apply_retention(self.ledger, self.policy, self.targets)
                if purged.memos:
                    log.info("retention: %d resolved alert memo(s) forgotten", purged.memos)
                if purged.content or purged.calls or any(purged.targets.values()):
                    log.info(
                        "retention: content of %d call(s) and %d call(s) removed from the ledger%s",
                        purged.content,
                        purged.calls,
                        "".join(f"; {n} from {t}" for t, n in purged.targets.items() if n),
                    )
            except Exception:
                log.warning("retention pass failed; trying again later", exc_info=True)
            self.stopped.wait(self.policy.interval_seconds)

    def stop(self) -> None:
        """Stop after the current pass."""
        self.stopped.set()
