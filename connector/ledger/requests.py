"""Requests the console leaves in the ledger for the worker: a target's check, a CRM search.

The web side never talks to a CRM. It `submit`s a request; a worker `take`s it, runs it with the
target's adapter and `finish`es it with a JSON result the console then shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Engine, Row

from connector.ledger.tables import console_requests

__all__ = ["CHECK", "DONE", "FAILED", "PENDING", "RUNNING", "SEARCH", "ConsoleRequest", "Requests"]

CHECK = "check"
SEARCH = "search"
PENDING = "pending"
RUNNING = "running"
DONE = "done"
FAILED = "failed"

#: A request a worker took but did not finish in this time (it died) is taken again.
STALE_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class ConsoleRequest:
    """One request and, once finished, its result."""

    id: int
    kind: str
    target: str
    params: Mapping[str, Any]
    status: str
    result: Mapping[str, Any] | None
    requested_by: str
    created_at: datetime
    finished_at: datetime | None


def _request(row: Row[Any]) -> ConsoleRequest:
    return ConsoleRequest(
        id=int(row.id),
        kind=row.kind,
        target=row.target,
        params=dict(row.params or {}),
        status=row.status,
        result=None if row.result is None else dict(row.result),
        requested_by=row.requested_by,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


class Requests:
    """The ``console_requests`` table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def submit(self, kind: str, target: str, params: Mapping[str, Any], user: str) -> int:
        """Leave a request for the worker; its id."""
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    console_requests.insert()
                    .values(
                        kind=kind,
                        target=target,
                        params=dict(params),
                        status=PENDING,
                        requested_by=user[:64],
                        created_at=datetime.now(UTC),
                    )
                    .returning(console_requests.c.id)
                ).scalar_one()
            )

    def get(self, request_id: int) -> ConsoleRequest | None:
        """The request, or ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(console_requests).where(console_requests.c.id == request_id)
            ).first()
        return None if row is None else _request(row)

    def latest(self, kind: str, target: str) -> ConsoleRequest | None:
        """The newest request of `kind` for `target`."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(console_requests)
                .where(console_requests.c.kind == kind, console_requests.c.target == target)
                .order_by(console_requests.c.id.desc())
                .limit(1)
            ).first()
        return None if row is None else _request(row)

    def recent(self, kind: str, limit: int = 500) -> list[ConsoleRequest]:
        """The newest requests of `kind`, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(console_requests)
                .where(console_requests.c.kind == kind)
                .order_by(console_requests.c.id.desc())
                .limit(limit)
            ).all()
        return [_request(r) for r in rows]

    def take(self, limit: int = 10) -> list[ConsoleRequest]:
        """Claim waiting requests (and ones a dead worker left running) for this worker."""
        now = datetime.now(UTC)
        taken: list[ConsoleRequest] = []
        with self.engine.begin() as conn:
            waiting = conn.execute(
                select(console_requests.c.id)
                .where(
                    or_(
                        console_requests.c.status == PENDING,
                        (console_requests.c.status == RUNNING)
                        & (console_requests.c.finished_at < now - STALE_AFTER),
                    )
                )
                .order_by(console_requests.c.id)
                .limit(limit)
            ).all()
            for (request_id,) in waiting:
                # finished_at marks when a running request was taken (see STALE_AFTER).
                claimed = conn.execute(
                    update(console_requests)
                    .where(
                        console_requests.c.id == request_id,
                        or_(
                            console_requests.c.status == PENDING,
                            console_requests.c.finished_at < now - STALE_AFTER,
                        ),
                    )
                    .values(status=RUNNING, finished_at=now)
                ).rowcount
                if claimed == 1:
                    row = conn.execute(
                        select(console_requests).where(console_requests.c.id == request_id)
                    ).one()
                    taken.append(_request(row))
        return taken

    def finish(self, request_id: int, ok: bool, result: Mapping[str, Any]) -> None:
        """Store the request's result."""
        with self.engine.begin() as conn:
            conn.execute(
                update(console_requests)
                .where(console_requests.c.id == request_id)
                .values(
                    status=DONE if ok else FAILED,
                    result=dict(result),
                    finished_at=datetime.now(UTC),
                )
            )
