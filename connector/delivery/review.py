"""Holding a call for a person: ``tie_break: review`` and ``on_no_match: review``.

Instead of guessing, planning asks `review_decision` whether to hold the delivery in the review
queue (with the candidates the search found) or, once the target's ``review_hours`` have passed
since the call was first held, to apply the fallback policy (``fallback_tie_break``,
``fallback_on_no_match``). A person resolves a held call in the console by assigning a record;
that match is journaled and the normal pipeline writes the call on it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.adapters import CrmRecord, Journal, Memo
from connector.config.policy import MatchingPolicy
from connector.delivery.requests import candidate
from connector.ledger.console import PIN_PREFIX
from connector.phone import PhoneNumber

__all__ = ["Review", "pinned_record", "review_decision"]


@dataclass(frozen=True)
class Review:
    """Hold the delivery for a person until `deadline`; why, and the candidates found."""

    reason: str
    candidates: tuple[dict[str, Any], ...]
    since: datetime
    deadline: datetime

    def as_ref(self) -> dict[str, Any]:
        """What the delivery's journal keeps under ``review``."""
        return {
            "reason": self.reason,
            "candidates": list(self.candidates),
            "since": self.since.isoformat(),
            "deadline": self.deadline.isoformat(),
        }


def review_decision(
    matching: MatchingPolicy,
    journal: Journal,
    reason: str,
    candidates: list[CrmRecord],
    caller: PhoneNumber,
    now: datetime | None = None,
) -> tuple[Review | None, MatchingPolicy]:
    """``(hold, None)`` while the call waits for a person, else ``(None, fallback policy)``.

    `reason` is ``ambiguous`` or ``unmatched``. The deadline runs from the first hold, which the
    journal keeps, so retries and "retry now" do not extend it.
    """
    now = now or datetime.now(UTC)
    fallback = dataclasses.replace(
        matching,
        tie_break=matching.fallback_tie_break,
        on_no_match=matching.fallback_on_no_match,
    )
    held = journal.get("review")
    since = datetime.fromisoformat(held["since"]) if isinstance(held, dict) else now
    deadline = since + timedelta(hours=matching.review_hours)
    if now >= deadline:
        return None, fallback
    review = Review(reason, tuple(candidate(c, caller.e164) for c in candidates), since, deadline)
    journal.record("review", review.as_ref())
    return review, fallback


def pinned_record(memo: Memo, caller: PhoneNumber) -> CrmRecord | None:
    """The record a person pinned this number to, if any."""
    value = memo.get(PIN_PREFIX + caller.e164)
    if value is None:
        return None
    data = json.loads(value)
    return CrmRecord(
        object_type=data["type"],
        id=data["id"],
        name=data.get("name") or "",
        owner_id=data.get("owner_id"),
        parent_id=data.get("parent_id"),
        extra=dict(data.get("extra") or {}),
    )
