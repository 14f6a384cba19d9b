"""The matching policy: which CRM records a call is logged on. CRM-neutral.

Adapters only search (`Adapter.search_by_phone`); this module decides. Every hit is re-checked
locally — its stored numbers, normalised with the default region, must equal the caller's E.164 —
so a number of another person or another country never matches, however the CRM's search treats
formats. Then the object priority applies (the first type in ``matching.objects`` with hits
wins, e.g. contact before lead before company), then the tie-break when several records of that
type remain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from connector.adapters.base import CrmRecord
from connector.phone import PhoneNumber, same_number
from connector.policy import MatchingPolicy

__all__ = ["MatchOutcome", "choose_records", "recheck"]

MATCHED = "matched"
AMBIGUOUS = "ambiguous"
UNMATCHED = "unmatched"
CREATED = "created"

_OLDEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class MatchOutcome:
    """The records chosen for a call and how they were found.

    `status` is ``matched`` (one record, or ``all`` as configured), ``ambiguous`` (several
    candidates and a tie-break picked), ``unmatched`` (no record) or ``created`` (a new record
    was made for the caller).
    """

    records: tuple[CrmRecord, ...]
    status: str
    candidates: int = 0
    rejected: int = 0

    def as_ref(self) -> dict[str, object]:
        """What the ledger keeps about the match (ids and types only, no personal data)."""
        return {
            "status": self.status,
            "records": [{"type": r.object_type, "id": r.id} for r in self.records],
            "candidates": self.candidates,
            "rejected": self.rejected,
        }


def recheck(hits: Sequence[CrmRecord], caller: PhoneNumber, region: str) -> list[CrmRecord]:
    """The hits one of whose stored numbers is the caller's number; duplicates removed."""
    seen: set[tuple[str, str]] = set()
    kept: list[CrmRecord] = []
    for hit in hits:
        key = (hit.object_type, hit.id)
        if key in seen:
            continue
        if any(same_number(stored, caller, region) for stored in hit.phones):
            seen.add(key)
            kept.append(hit)
    return kept


def choose_records(
    hits: Sequence[CrmRecord],
    caller: PhoneNumber,
    policy: MatchingPolicy,
    region: str,
    owner_id: str | None = None,
) -> MatchOutcome:
    """Apply re-check, object priority and tie-break to a CRM search's `hits`.

    Tie-breaks: ``most_recent`` (latest modified), ``owner`` (the one owned by the call's mapped
    owner; else the most recent), ``all`` (log on every candidate of the winning type).
    """
    confirmed = recheck(hits, caller, region)
    rejected = len({(h.object_type, h.id) for h in hits}) - len(confirmed)
    for object_type in policy.objects:
        of_type = [r for r in confirmed if r.object_type == object_type]
        if not of_type:
            continue
        if len(of_type) == 1:
            return MatchOutcome((of_type[0],), MATCHED, 1, rejected)
        if policy.tie_break == "all":
            return MatchOutcome(tuple(of_type), MATCHED, len(of_type), rejected)
        by_recency = sorted(of_type, key=lambda r: r.modified_at or _OLDEST, reverse=True)
        if policy.tie_break == "owner" and owner_id is not None:
            owned = [r for r in by_recency if r.owner_id == owner_id]
            if owned:
                return MatchOutcome((owned[0],), AMBIGUOUS, len(of_type), rejected)
        return MatchOutcome((by_recency[0],), AMBIGUOUS, len(of_type), rejected)
    return MatchOutcome((), UNMATCHED, 0, rejected)
