"""What the sales-ops console reads from and writes to the ledger.

Reads: the overview's counts (and every target's dead deliveries with the latest reason), the
calls list (newest first, keyset pagination, filters, search by number or call id), one call
with its deliveries, attempts and console actions, the review queue.
Writes: operator actions on one delivery (retry now, replay, skip, assign a record), each recorded
in ``console_actions`` in the same transaction; the worker picks the delivery up as usual.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import exists, func, select, union, update
from sqlalchemy.engine import Connection, Engine, Row

from connector.ledger.clock import Clock, system_clock
from connector.ledger.ledger import CallSummary, DeliveryState, delivery_state
from connector.ledger.tables import (
    DEAD,
    PENDING,
    PROCESSING,
    RETRYING,
    REVIEW,
    SKIPPED,
    calls,
    console_actions,
    deliveries,
    delivery_attempts,
)

__all__ = [
    "PIN_PREFIX",
    "ActionRefused",
    "Attempt",
    "CallDetail",
    "CallFilter",
    "ConsoleAction",
    "ConsoleLedger",
    "DeadTarget",
    "Overview",
]

#: Memo key prefix of a number a person pinned to a CRM record ("remember this number"); the
#: matching step looks it up before searching.
PIN_PREFIX = "pin:"

#: States in which a delivery still waits for the worker.
WAITING = (PENDING, RETRYING, PROCESSING)


class ActionRefused(Exception):
    """The delivery is not in a state the action applies to (or does not exist)."""


@dataclass(frozen=True)
class CallFilter:
    """The calls list's filters; empty values do not filter."""

    numbers: tuple[str, ...] = ()  # stored spellings of one number (sipgate's digits, E.164)
    call_id: str | None = None
    status: str | None = None
    target: str | None = None
    direction: str | None = None
    channel: str | None = None
    user: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Attempt:
    """One finished attempt of a delivery."""

    delivery_id: int
    attempt: int
    finished_at: datetime
    status: str
    detail: str | None


@dataclass(frozen=True)
class ConsoleAction:
    """Something a console user did."""

    at: datetime
    user: str
    action: str
    target: str | None
    detail: Mapping[str, Any]


@dataclass(frozen=True)
class CallDetail:
    """Everything the call page shows: the call, its raw report, attempts and actions."""

    call: CallSummary
    raw_body: bytes
    attempts: tuple[Attempt, ...]
    actions: tuple[ConsoleAction, ...]


@dataclass(frozen=True)
class DeadTarget:
    """A target's dead deliveries (all of them, whenever the call came): how many, and the
    reason and time of the one that died last."""

    target: str
    count: int
    last_reason: str
    last_at: datetime


@dataclass(frozen=True)
class Overview:
    """The overview page's figures."""

    today: Mapping[str, Mapping[str, int]]  # target → status → deliveries of calls today
    week: Mapping[str, Mapping[str, int]]  # the same for the last 7 days
    oldest_waiting: datetime | None
    review_queue: int
    per_day: Sequence[tuple[datetime, int]] = field(default_factory=tuple)
    dead: Sequence[DeadTarget] = field(default_factory=tuple)  # by target name


def _now() -> datetime:
    return datetime.now(UTC)


def _call(row: Row[Any], found: Sequence[DeliveryState]) -> CallSummary:
    return CallSummary(
        call_id=row.call_id,
        received_at=row.received_at,
        start_time=row.start_time,
        direction=row.direction,
        from_number=row.from_number,
        to_number=row.to_number,
        duration_ms=int(row.duration_ms),
        channel_name=row.channel_name,
        deliveries=tuple(found),
        user_names=row.user_names,
        pk=int(row.id),
    )


_CALL_COLUMNS = [c for c in calls.c if c.name != "raw_body"]


class ConsoleLedger:
    """The console's queries and operator actions over the ledger's engine."""

    def __init__(self, engine: Engine, clock: Clock = system_clock) -> None:
        self.engine = engine
        self.clock = clock

    # --- reading ------------------------------------------------------------------------------

    def _with_deliveries(self, conn: Connection, rows: Sequence[Row[Any]]) -> list[CallSummary]:
        by_call: dict[int, list[DeliveryState]] = {int(r.id): [] for r in rows}
        if by_call:
            for d in conn.execute(
                select(deliveries)
                .where(deliveries.c.call_pk.in_(by_call))
                .order_by(deliveries.c.target)
            ):
                by_call[int(d.call_pk)].append(delivery_state(d))
        return [_call(r, by_call[int(r.id)]) for r in rows]

    def list_calls(
        self, where: CallFilter, *, before: int | None = None, limit: int = 50
    ) -> tuple[list[CallSummary], int | None]:
        """The newest calls matching `where`, older than call pk `before`, and the next page's key.

        Keyset pagination: every page is one index range scan, however deep.
        """
        query = select(*_CALL_COLUMNS).order_by(calls.c.id.desc()).limit(limit + 1)
        if before is not None:
            query = query.where(calls.c.id < before)
        if where.numbers:
            # One index lookup per column: our own number is on most calls, so with an OR the
            # planner may rather walk the whole table in id order.
            query = query.where(
                calls.c.id.in_(
                    union(
                        select(calls.c.id).where(calls.c.from_number.in_(where.numbers)),
                        select(calls.c.id).where(calls.c.to_number.in_(where.numbers)),
                    )
                )
            )
        if where.call_id:
            query = query.where(calls.c.call_id == where.call_id)
        if where.direction:
            query = query.where(calls.c.direction == where.direction)
        if where.channel:
            query = query.where(calls.c.channel_name == where.channel)
        if where.user:
            query = query.where(calls.c.user_names.contains(where.user, autoescape=True))
        if where.since:
            query = query.where(calls.c.received_at >= where.since)
        if where.until:
            query = query.where(calls.c.received_at < where.until)
        if where.status or where.target:
            conditions = [deliveries.c.call_pk == calls.c.id]
            if where.status:
                conditions.append(deliveries.c.status == where.status)
            if where.target:
                conditions.append(deliveries.c.target == where.target)
            query = query.where(exists().where(*conditions))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            page = self._with_deliveries(conn, rows[:limit])
        following = page[-1].pk if len(rows) > limit else None
        return page, following

    def call(self, call_id: str) -> CallDetail | None:
        """One call with deliveries, attempt history and console actions; ``None`` if unknown."""
        with self.engine.connect() as conn:
            row = conn.execute(select(calls).where(calls.c.call_id == call_id)).first()
            if row is None:
                return None
            call = self._with_deliveries(conn, [row])[0]
            ids = [d.delivery_id for d in call.deliveries]
            attempts = tuple(
                Attempt(int(a.delivery_id), int(a.attempt), a.finished_at, a.status, a.detail)
                for a in conn.execute(
                    select(delivery_attempts)
                    .where(delivery_attempts.c.delivery_id.in_(ids))
                    .order_by(delivery_attempts.c.id)
                )
            )
            actions = tuple(
                ConsoleAction(a.at, a.user, a.action, a.target, dict(a.detail or {}))
                for a in conn.execute(
                    select(console_actions)
                    .where(console_actions.c.call_id == call_id)
                    .order_by(console_actions.c.id)
                )
            )
        return CallDetail(call, bytes(row.raw_body), attempts, actions)

    def delivery(self, delivery_id: int) -> DeliveryState | None:
        """One delivery, or ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(select(deliveries).where(deliveries.c.id == delivery_id)).first()
        return None if row is None else delivery_state(row)

    def review_queue(self, limit: int = 200) -> list[CallSummary]:
        """Calls with a delivery held for review, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(*_CALL_COLUMNS)
                .where(
                    exists().where(
                        deliveries.c.call_pk == calls.c.id, deliveries.c.status == REVIEW
                    )
                )
                .order_by(calls.c.id)
                .limit(limit)
            ).all()
            return self._with_deliveries(conn, rows)

    def overview(self, today_start: datetime, day_starts: Sequence[datetime]) -> Overview:
        """Counts for the overview; `today_start` and `day_starts` are local midnights in UTC.

        `day_starts` bound the chart's days: n + 1 midnights for n days, the last one tomorrow's.
        """
        week_start = today_start - timedelta(days=6)

        def counts(conn: Connection, since: datetime) -> dict[str, dict[str, int]]:
            found: dict[str, dict[str, int]] = {}
            for target, status, n in conn.execute(
                select(deliveries.c.target, deliveries.c.status, func.count())
                .join(calls, calls.c.id == deliveries.c.call_pk)
                .where(calls.c.received_at >= since)
                .group_by(deliveries.c.target, deliveries.c.status)
            ):
                found.setdefault(target, {})[status] = int(n)
            return found

        with self.engine.connect() as conn:
            today = counts(conn, today_start)
            week = counts(conn, week_start)
            oldest = conn.execute(
                select(func.min(deliveries.c.created_at)).where(deliveries.c.status.in_(WAITING))
            ).scalar()
            review = conn.execute(
                select(func.count()).where(deliveries.c.status == REVIEW)
            ).scalar_one()
            per_day = [
                (
                    start,
                    int(
                        conn.execute(
                            select(func.count()).where(
                                calls.c.received_at >= start, calls.c.received_at < end
                            )
                        ).scalar_one()
                    ),
                )
                for start, end in pairwise(day_starts)
            ]
            dead = self._dead_targets(conn)
        return Overview(today, week, oldest, int(review), tuple(per_day), dead)

    @staticmethod
    def _dead_targets(conn: Connection) -> tuple[DeadTarget, ...]:
        """Per target with dead deliveries: the count and the latest one's reason."""
        found = []
        for target, count in conn.execute(
            select(deliveries.c.target, func.count())
            .where(deliveries.c.status == DEAD)
            .group_by(deliveries.c.target)
            .order_by(deliveries.c.target)
        ):
            last = conn.execute(
                select(deliveries.c.last_error, deliveries.c.updated_at)
                .where(deliveries.c.status == DEAD, deliveries.c.target == target)
                .order_by(deliveries.c.updated_at.desc(), deliveries.c.id.desc())
                .limit(1)
            ).one()
            found.append(DeadTarget(target, int(count), last.last_error or "", last.updated_at))
        return tuple(found)

    # --- the audit trail ----------------------------------------------------------------------

    def record_action(
        self,
        user: str,
        action: str,
        *,
        call_id: str | None = None,
        target: str | None = None,
        detail: Mapping[str, Any] | None = None,
        conn: Connection | None = None,
    ) -> None:
        """Append to the audit trail (in `conn`'s transaction when given)."""
        values = {
            "at": self.clock(),
            "user": user[:64],
            "action": action,
            "call_id": call_id,
            "target": target,
            "detail": dict(detail or {}),
        }
        if conn is not None:
            conn.execute(console_actions.insert().values(**values))
            return
        with self.engine.begin() as own:
            own.execute(console_actions.insert().values(**values))

    def failed_logins(self, user: str, address: str, since: datetime) -> tuple[int, int]:
        """Failed logins since `since`: ``(for this user name, from this address)``."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(console_actions.c.user, console_actions.c.detail)
                .where(console_actions.c.action == "login_failed", console_actions.c.at >= since)
                .limit(10_000)
            ).all()
        by_user = sum(1 for r in rows if r.user == user[:64])
        by_address = sum(1 for r in rows if (r.detail or {}).get("address") == address)
        return by_user, by_address

    # --- operator actions ---------------------------------------------------------------------

    def _act(
        self,
        user: str,
        action: str,
        delivery_id: int,
        allowed: Sequence[str],
        values: Mapping[str, Any],
        detail: Mapping[str, Any] | None = None,
    ) -> str:
        """Update one delivery if its status is in `allowed`, and record the action; the call id."""
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(
                select(deliveries.c.target, deliveries.c.status, calls.c.call_id)
                .join(calls, calls.c.id == deliveries.c.call_pk)
                .where(deliveries.c.id == delivery_id)
            ).first()
            if row is None:
                raise ActionRefused("No such delivery.")
            changed = conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id, deliveries.c.status.in_(allowed))
                .values(updated_at=now, **values)
            ).rowcount
            if changed != 1:
                raise ActionRefused(f"Not possible while the delivery is {row.status}.")
            self.record_action(
                user,
                action,
                call_id=row.call_id,
                target=row.target,
                detail={"delivery_id": delivery_id, "from": row.status, **(detail or {})},
                conn=conn,
            )
            return str(row.call_id)

    def retry_now(self, user: str, delivery_id: int) -> str:
        """Make a waiting or held delivery due now (it keeps its attempt count)."""
        now = self.clock()
        return self._act(
            user,
            "retry_now",
            delivery_id,
            (PENDING, RETRYING, REVIEW),
            {"next_attempt_at": now, "queued_until": None},
        )

    def replay(self, user: str, delivery_id: int) -> str:
        """Deliver a dead (or skipped) delivery again, with a fresh retry budget."""
        now = self.clock()
        return self._act(
            user,
            "replay",
            delivery_id,
            (DEAD, SKIPPED),
            {
                "status": PENDING,
                "next_attempt_at": now,
                "attempts": 0,
                "queued_until": None,
                "retry_since": now,
            },
        )

    def skip(self, user: str, delivery_id: int) -> str:
        """Give up a delivery that has not been written: skipped, with who decided it."""
        return self._act(
            user,
            "skip",
            delivery_id,
            (PENDING, RETRYING, DEAD, REVIEW),
            {"status": SKIPPED, "last_error": f"Skipped in the console by {user}"},
        )

    def assign(self, user: str, delivery_id: int, record: Mapping[str, Any]) -> str:
        """Log a held call on `record` (a journal match record): the worker writes it next.

        The match is journaled as ``assigned`` by `user`, so every retry logs on this record.
        """
        with self.engine.connect() as conn:
            refs = conn.execute(
                select(deliveries.c.refs).where(deliveries.c.id == delivery_id)
            ).scalar()
        match = {"status": "assigned", "records": [dict(record)], "assigned_by": user}
        return self._act(
            user,
            "assign",
            delivery_id,
            (REVIEW,),
            {
                "status": PENDING,
                "next_attempt_at": self.clock(),
                "queued_until": None,
                "refs": {**dict(refs or {}), "match": match},
            },
            {"record": {"type": record.get("type"), "id": record.get("id")}},
        )
