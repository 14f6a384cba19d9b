"""The matching policy: which CRM records a call is logged on. CRM-neutral.

Adapters only search (`Adapter.search_by_phone`); this module decides. Every hit is re-checked
locally — its stored numbers, normalised with the default region, must equal the caller's E.164 —
so a number of another person or another country never matches, however the CRM's search treats
formats. Then the object priority applies (the first type in ``matching.objects`` with hits
wins, e.g. contact before lead before company), then the tie-break when several records of that
type remain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connector.adapters.base import CrmRecord
from connector.config.policy import MatchingPolicy
from connector.phone import PhoneNumber, same_number

__all__ = ["MatchOutcome", "choose_records", "recheck"]

MATCHED = "matched"
AMBIGUOUS = "ambiguous"
UNMATCHED = "unmatched"
CREATED = "created"
#: A person's decisions: a record chosen in the review queue, a number pinned to a record.
ASSIGNED = "assigned"
PINNED = "pinned"

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

    def as_ref(self) -> dict[str, Any]:
        """What the delivery's journal keeps of the match: enough to rebuild the same records.

        A retry logs the call on exactly these records (with their company/account, owner and
        name, which associations and templates use), even if the CRM changed in between.
        """
        return {
            "status": self.status,
            "records": [
                {
                    "type": r.object_type,
                    "id": r.id,
                    "parent_id": r.parent_id,
                    "owner_id": r.owner_id,
                    "name": r.name,
                    "extra": dict(r.extra),
                }
                for r in self.records
            ],
            "candidates": self.candidates,
            "rejected": self.rejected,
        }

    @classmethod
    def from_ref(cls, ref: Mapping[str, Any]) -> MatchOutcome:
        """The outcome `as_ref` recorded."""
        records = tuple(
            CrmRecord(
                object_type=r["type"],
                id=r["id"],
                parent_id=r.get("parent_id"),
                owner_id=r.get("owner_id"),
                name=r.get("name") or "",
                extra=dict(r.get("extra") or {}),
            )
            for r in ref["records"]
        )
        return cls(records, ref["status"], ref.get("candidates", 0), ref.get("rejected", 0))

    @staticmethod
    def summary(ref: Mapping[str, Any]) -> dict[str, Any]:
        """The part of a recorded match operators see in `sipgate-crm status` (no names)."""
        return {
            "status": ref.get("status"),
            "records": [{"type": r.get("type"), "id": r.get("id")} for r in ref.get("records", [])],
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
