"""Removing what the ledger holds about calls: content after a while, whole calls later, on demand.

A call's content is its raw body (transcript, summary, key points, action items, headline); the
call row keeps the metadata (call id, times, direction, numbers, channel) and, in its deliveries,
what was written where. Content removal empties the raw body of calls no delivery still needs
(every delivery done, skipped or dead); removing a call deletes the row and its deliveries.
Either way, SQLite overwrites the freed bytes (``secure_delete``) and the write-ahead log is
emptied, so the text is gone from the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from connector.ledger.ledger import Ledger
from connector.ledger.tables import CONTENT_REMOVED, DEAD, DONE, SKIPPED, calls, deliveries
from connector.sql import scrub_freed_pages

__all__ = ["ErasedCall", "erase_call", "remove_calls", "remove_content"]


@dataclass(frozen=True)
class ErasedCall:
    """A call removed from the ledger, with what its deliveries had written (refs per target)."""

    call_id: str
    refs: dict[str, dict[str, Any]]


def remove_content(ledger: Ledger, before: datetime) -> int:
    """Empty the raw body of calls received before `before` whose deliveries are all finished.

    Returns how many calls lost their content. A call with a delivery still pending, running or
    retrying keeps it until that delivery is finished.
    """
    unfinished = select(deliveries.c.call_pk).where(
        deliveries.c.status.not_in((DONE, SKIPPED, DEAD))
    )
    with ledger.engine.begin() as conn:
        removed = conn.execute(
            update(calls)
            .where(
                calls.c.received_at < before,
                calls.c.raw_body != CONTENT_REMOVED,
                calls.c.id.not_in(unfinished),
            )
            .values(raw_body=CONTENT_REMOVED)
        ).rowcount
    if removed:
        scrub_freed_pages(ledger.engine)
    return int(removed)


def remove_calls(ledger: Ledger, before: datetime) -> int:
    """Delete calls received before `before` with their deliveries, whatever their state."""
    old = select(calls.c.id).where(calls.c.received_at < before)
    with ledger.engine.begin() as conn:
        conn.execute(delete(deliveries).where(deliveries.c.call_pk.in_(old)))
        removed = conn.execute(delete(calls).where(calls.c.received_at < before)).rowcount
    if removed:
        scrub_freed_pages(ledger.engine)
    return int(removed)


def erase_call(ledger: Ledger, call_id: str) -> ErasedCall | None:
    """Delete one call and its deliveries (the right to erasure); ``None`` if it is unknown.

    The answer names what each target recorded, so the operator can erase it in the CRM.
    """
    with ledger.engine.begin() as conn:
        pk = conn.execute(select(calls.c.id).where(calls.c.call_id == call_id)).scalar()
        if pk is None:
            return None
        refs = {
            row.target: dict(row.refs or {})
            for row in conn.execute(
                select(deliveries.c.target, deliveries.c.refs).where(deliveries.c.call_pk == pk)
            )
        }
        conn.execute(delete(deliveries).where(deliveries.c.call_pk == pk))
        conn.execute(delete(calls).where(calls.c.id == pk))
    scrub_freed_pages(ledger.engine)
    return ErasedCall(call_id=call_id, refs=refs)
