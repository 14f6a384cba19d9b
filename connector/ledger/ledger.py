"""The ledger: the durable truth about every accepted call and its delivery to each target.

One row per call (dedupe key, raw body, a few parsed fields for listing) and one row per
(call, target) with its delivery state. The ledger is a transactional outbox: the web side only
commits rows here, and the worker's relay sends queue messages for due deliveries. Messages are
hints ("look at delivery 42"); a delivery is claimed here with a lease before any work, so a
crashed worker's delivery is found again and a delivery is never worked on by two workers at once.

Leases are short (``queue.lease_seconds``, 15 s by default) and kept alive by a heartbeat while an
attempt runs (`renew`, called by the worker's `connector.delivery.leases.LeaseKeeper`), instead of
one long lease per attempt. Why: a long lease is both the crash-recovery time and the longest
attempt allowed, and those want opposite values. With a heartbeat, a worker killed with
``kill -9`` stops renewing and its deliveries are free again one lease later, while a slow but
live attempt keeps its delivery however long it takes (up to `MAX_ATTEMPT`). Exclusion holds
because a lease is only taken over once it expired in the ledger, and its holder stops first:
the holder counts its lease as valid only until ``lease`` after it started its last successful
renewal (so never later than the row's ``lease_until``), checks that before every journal step,
and a renewal that finds another token in the row tells it the delivery is gone; its result is
only recorded under its own token. Only a CRM request already in flight when the holder's ledger
connection failed for a whole lease can overlap a successor; the adapters' journals and
idempotent look-ups cover that case. Worker identities with liveness rows were the alternative:
they recover no faster (liveness also needs a timeout) and add a table every claim joins.

The ledger is the only clock of delivery (`Clock`, injectable for tests): retries are not
scheduled in the queue; `take_due` hands the relay what is due now, and `next_due` says when the
next one will be, so a retry starts on time whatever happened to earlier queue messages.

SQLite (the default) runs in WAL mode with ``synchronous=FULL``: a commit is on disk before the
webhook is answered, so an answered call survives a process crash and a power loss. A deleted or
replaced SQLite file is noticed before every transaction (`connector.ledger.guard`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import (
    Insert,
    and_,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from connector.ledger.clock import Clock, system_clock
from connector.ledger.group_commit import GroupCommit, WriterLock
from connector.ledger.guard import FileGuard, LedgerFileGone, sqlite_path
from connector.ledger.held import HeldConnection
from connector.ledger.prepared import PreparedInsert
from connector.ledger.tables import (
    CONTENT_REMOVED,
    DEAD,
    DONE,
    PENDING,
    PROCESSING,
    RETRYING,
    REVIEW,
    SKIPPED,
    calls,
    deliveries,
    delivery_attempts,
    target_memos,
    target_states,
)
from connector.payload import CallReport
from connector.sql import make_engine

__all__ = [
    "MAX_ATTEMPT",
    "UNEXPECTED_LIMIT",
    "CallSummary",
    "Claim",
    "DeliveryState",
    "Due",
    "LeaseLost",
    "Ledger",
    "LedgerFileGone",
    "LedgerUnavailable",
    "ParkedTarget",
    "UnknownCall",
    "delivery_state",
]

MAX_ATTEMPT = timedelta(minutes=15)
"""An attempt running longer than this is not renewed any more: its delivery goes to another
worker (a CRM request that never returns must not hold a delivery for ever)."""

UNEXPECTED_LIMIT = 3
"""After this many failures of an unclassified error type a delivery is dead, not retried."""

# Compiled once per ledger (`PreparedInsert`): the request path only binds parameters to these.
_INSERT_DELIVERY = deliveries.insert().returning(deliveries.c.id)
_CALL_COLUMNS = (
    "dedupe_key",
    "call_id",
    "payload_version",
    "received_at",
    "raw_body",
    "start_time",
    "direction",
    "from_number",
    "to_number",
    "duration_ms",
    "channel_name",
    "user_names",
)
_DELIVERY_COLUMNS = (
    "call_pk",
    "target",
    "status",
    "attempts",
    "next_attempt_at",
    "refs",
    "retry_since",
    "unexpected_failures",
    "created_at",
    "updated_at",
)


def _insert_call(dialect_name: str) -> Insert:
    """The call insert; a call id stored before inserts nothing and returns no row."""
    if dialect_name == "postgresql":
        pg = postgresql_insert(calls).on_conflict_do_nothing(index_elements=["dedupe_key"])
        return pg.returning(calls.c.id)
    lite = sqlite_insert(calls).on_conflict_do_nothing(index_elements=["dedupe_key"])
    return lite.returning(calls.c.id)


@dataclass(frozen=True)
class _NewCall:
    """What one webhook stores: the parsed report, its raw body, the targets to deliver to."""

    report: CallReport
    raw_body: bytes
    targets: tuple[str, ...]


def _call_row(report: CallReport, raw_body: bytes) -> dict[str, Any]:
    """A call's columns but ``received_at``, which the whole batch shares."""
    return {
        "dedupe_key": report.call_id,
        "call_id": report.call_id,
        "payload_version": report.payload_version,
        "raw_body": raw_body,
        "start_time": report.start_time,
        "direction": report.direction,
        "from_number": report.from_number,
        "to_number": report.to_number,
        "duration_ms": report.duration // timedelta(milliseconds=1),
        "channel_name": report.channel.name if report.channel else None,
        # Who took the call, for the console's filter (names joined, bounded).
        "user_names": ", ".join(u.full_name for u in report.users if u.full_name)[:500] or None,
    }


def _new_delivery(now: datetime) -> dict[str, Any]:
    """A new delivery's columns but ``call_pk`` and ``target``: the same for a whole batch."""
    return {
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "refs": {},
        "retry_since": now,
        "unexpected_failures": 0,
        "created_at": now,
        "updated_at": now,
    }


class LeaseLost(Exception):
    """This worker's lease on a delivery expired and another worker may hold it now."""


class Due(NamedTuple):
    """A delivery the relay must send a message for; `again`: an attempt already started (a
    retry, or a delivery a dead worker held), which goes ahead of new calls in the queue."""

    delivery_id: int
    again: bool


class LedgerUnavailable(Exception):
    """The ledger cannot be opened or written at start-up; the message is one line for people."""


class UnknownCall(LookupError):
    """No call with this id is in the ledger."""


@dataclass(frozen=True)
class Claim:
    """A delivery this worker holds a lease on, with everything needed to work on it."""

    delivery_id: int
    token: str
    target: str
    attempts: int
    call_id: str
    raw_body: bytes
    refs: dict[str, Any]
    first_received_at: datetime
    retry_since: datetime
    unexpected_failures: int = 0


@dataclass(frozen=True)
class ParkedTarget:
    """A target whose deliveries wait until `until`: why, and since when."""

    target: str
    until: datetime
    reason: str
    since: datetime | None


@dataclass(frozen=True)
class DeliveryState:
    """Where one call's delivery to one target stands."""

    delivery_id: int
    target: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    refs: dict[str, Any]


@dataclass(frozen=True)
class CallSummary:
    """A call as `sipgate-crm status` lists it."""

    call_id: str
    received_at: datetime
    start_time: datetime | None
    direction: str
    from_number: str
    to_number: str
    duration_ms: int
    channel_name: str | None
    deliveries: tuple[DeliveryState, ...]
    user_names: str | None = None
    pk: int = 0  # the ledger's row id: newer calls have higher ones

    @property
    def remote_number(self) -> str:
        """The customer's side of the call."""
        return self.from_number if self.direction == "IN" else self.to_number


class Ledger:
    """The few operations the web side, the worker and the CLI need on the ledger tables."""

    def __init__(self, engine: Engine, clock: Clock = system_clock) -> None:
        self.engine = engine
        self._inserts: tuple[PreparedInsert, PreparedInsert] | None = None
        self.clock = clock
        path = sqlite_path(engine.url)
        self.guard = FileGuard(engine, path) if path is not None else None
        self._writer = HeldConnection(engine, self.guard.check if self.guard else None)
        writer = WriterLock(path.with_name(path.name + ".writer")) if path is not None else None
        self._group_commit: GroupCommit[_NewCall, list[int] | None] = GroupCommit(
            self._store_calls, lock=writer.held if writer is not None else nullcontext
        )

    @classmethod
    def from_url(cls, url: str, clock: Clock = system_clock) -> Ledger:
        """Open the ledger at a SQLAlchemy URL (tables are created by `migrate`).

        Raises `LedgerUnavailable` when a SQLite ledger's folder cannot be created.
        """
        try:
            return cls(make_engine(url), clock)
        except OSError as exc:
            raise _unavailable(url, exc.strerror or str(exc), sqlite_path(url)) from exc

    # --- schema -----------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision; safe to call from several processes.

        Raises `LedgerUnavailable` with a one-line reason when the database cannot be opened or
        written (a read-only data folder, a server that refuses the connection).
        """
        try:
            self._migrate()
        except (OSError, DBAPIError) as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise _unavailable(
                self.engine.url.render_as_string(), reason, self.guard.path if self.guard else None
            ) from exc

    def _migrate(self) -> None:
        from connector.ledger.migrations import upgrade

        if self.engine.dialect.name == "postgresql":
            # One process migrates at a time; the others then find the schema current.
            with self.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(7246873)"))
                try:
                    upgrade(self.engine)
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(7246873)"))
                    conn.commit()
            return
        for attempt in range(10):
            try:
                upgrade(self.engine)
                return
            except OperationalError:
                # Another process is migrating the same fresh database; its result is what we need.
                if attempt == 9:
                    raise
                time.sleep(0.3)

    def ping(self) -> None:
        """Raise if the database cannot be reached, or its SQLite file was deleted or replaced."""
        with self.engine.connect() as conn:
            conn.execute(select(1))

    def close(self) -> None:
        """Close every connection, the one the webhook writer holds too; the ledger reopens
        them on its next use."""
        self._writer.discard()
        self.engine.dispose()

    # --- the web side -----------------------------------------------------------------------

    def store_call(
        self, report: CallReport, raw_body: bytes, targets: Sequence[str]
    ) -> list[int] | None:
        """Commit the call and one pending delivery per target in one transaction.

        Returns the new delivery ids, or ``None`` when this call id was stored before (a duplicate:
        nothing is written). A database failure raises SQLAlchemy's `DBAPIError` subclass for it.
        Calls stored at the same moment by other threads of this process share the transaction
        and its disk flush (`GroupCommit`); each returns only after that commit, which is as
        durable as any other (WAL, ``synchronous=FULL`` on SQLite).
        """
        return self._group_commit.run(_NewCall(report, raw_body, tuple(targets)))

    def _store_calls(self, batch: Sequence[_NewCall]) -> list[list[int] | None]:
        """Insert `batch` in one transaction; per call its delivery ids, ``None`` for a duplicate.

        When the database dropped the held connection, the batch is tried once more on a fresh
        one (what the pool's pre-ping did); should the lost transaction have committed after
        all, its calls are now duplicates and nothing is written twice.
        """
        try:
            return self._insert_batch(batch)
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
        return self._insert_batch(batch)

    def _insert_batch(self, batch: Sequence[_NewCall]) -> list[list[int] | None]:
        """One try of `_store_calls`, on the held DBAPI connection (`HeldConnection`).

        The inserts are compiled once: this is the webhook's hot path. A call id already stored
        (or earlier in `batch`) inserts nothing (ON CONFLICT DO NOTHING), so a duplicate never
        aborts the transaction of the others. A failure is a `DBAPIError` without parameters,
        ``connection_invalidated`` when the connection is gone.
        """
        dbapi = self.engine.dialect.loaded_dbapi
        raw = self._writer.get()
        cursor = raw.cursor()
        statement = ""
        try:
            call_insert, delivery_insert = self._store_inserts()
            now = self.clock()
            # Converted once per batch, not once per row and column.
            stamped = call_insert.convert({"received_at": now})
            new_delivery = delivery_insert.convert(_new_delivery(now))
            results: list[list[int] | None] = []
            for new in batch:
                statement = call_insert.sql
                cursor.execute(
                    statement, call_insert.parameters(_call_row(new.report, new.raw_body), stamped)
                )
                inserted = cursor.fetchall()
                if not inserted:
                    results.append(None)
                    continue
                statement = delivery_insert.sql
                delivery_ids: list[int] = []
                for target in new.targets:
                    own = {"call_pk": inserted[0][0], "target": target}
                    cursor.execute(statement, delivery_insert.parameters(own, new_delivery))
                    delivery_ids.append(int(cursor.fetchall()[0][0]))
                results.append(delivery_ids)
            statement = "COMMIT"
            raw.commit()
            return results
        except dbapi.Error as exc:
            gone = self.engine.dialect.is_disconnect(exc, raw.dbapi_connection, cursor)
            if gone:
                self._writer.discard(exc)
            else:
                try:
                    raw.rollback()
                except dbapi.Error:  # a connection that cannot roll back is not kept
                    self._writer.discard(exc)
            raise DBAPIError.instance(
                statement,
                None,
                exc,
                dbapi.Error,
                hide_parameters=True,
                connection_invalidated=gone,
            ) from exc
        finally:
            cursor.close()

    def _store_inserts(self) -> tuple[PreparedInsert, PreparedInsert]:
        """The two inserts of `store_call`, compiled on first use (the dialect knows its server
        version only after the first connection)."""
        if self._inserts is None:
            dialect = self.engine.dialect
            self._inserts = (
                PreparedInsert(_insert_call(dialect.name), dialect, _CALL_COLUMNS),
                PreparedInsert(_INSERT_DELIVERY, dialect, _DELIVERY_COLUMNS),
            )
        return self._inserts

    # --- the worker -------------------------------------------------------------------------

    def claim(self, delivery_id: int, lease: timedelta) -> Claim | None:
        """Take a lease on a delivery that is due, or whose previous lease expired.

        Returns ``None`` when the delivery is done, not yet due, or leased by someone else, so a
        duplicate queue message is harmless. A message that came before the delivery was due is
        forgotten (`take_due` sends a new one when it is due), never a reason to wait.
        """
        now = self.clock()
        token = str(uuid.uuid4())
        with self.engine.begin() as conn:
            result = conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id, self._due_condition(now))
                .values(
                    status=PROCESSING,
                    lease_until=now + lease,
                    lease_token=token,
                    attempts=deliveries.c.attempts + 1,
                    queued_until=None,
                    updated_at=now,
                )
            )
            if result.rowcount != 1:
                conn.execute(
                    update(deliveries)
                    .where(
                        deliveries.c.id == delivery_id,
                        deliveries.c.status.in_((PENDING, RETRYING)),
                    )
                    .values(queued_until=None)
                )
                return None
            row = conn.execute(
                select(
                    deliveries.c.target,
                    deliveries.c.attempts,
                    deliveries.c.refs,
                    deliveries.c.retry_since,
                    deliveries.c.created_at,
                    deliveries.c.unexpected_failures,
                    calls.c.call_id,
                    calls.c.raw_body,
                    calls.c.received_at,
                )
                .join(calls, calls.c.id == deliveries.c.call_pk)
                .where(deliveries.c.id == delivery_id)
            ).one()
        return Claim(
            delivery_id=delivery_id,
            token=token,
            target=row.target,
            attempts=row.attempts,
            call_id=row.call_id,
            raw_body=bytes(row.raw_body),
            refs=dict(row.refs or {}),
            first_received_at=row.received_at,
            retry_since=row.retry_since or row.created_at,
            unexpected_failures=int(row.unexpected_failures or 0),
        )

    def _finish(self, claim: Claim, **values: Any) -> bool:
        """End the attempt under our lease, adding it to the delivery's attempt history."""
        now = self.clock()
        with self.engine.begin() as conn:
            result = conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.id == claim.delivery_id, deliveries.c.lease_token == claim.token
                )
                .values(lease_until=None, lease_token=None, updated_at=now, **values)
            )
            if result.rowcount != 1:
                return False
            conn.execute(
                delivery_attempts.insert().values(
                    delivery_id=claim.delivery_id,
                    attempt=claim.attempts,
                    finished_at=now,
                    status=values["status"],
                    detail=values.get("last_error"),
                )
            )
            return True

    def record_ref(
        self, claim: Claim, key: str, value: Any, renew: timedelta | None = None
    ) -> None:
        """Persist at once what a delivery has written so far (its journal), under our lease.

        With `renew`, the lease is extended to now + `renew` (work in progress keeps it). Raises
        `LeaseLost` when the lease is no longer ours: the writer must stop.
        """
        now = self.clock()
        with self.engine.begin() as conn:
            current = conn.execute(
                select(deliveries.c.refs).where(deliveries.c.id == claim.delivery_id)
            ).scalar_one()
            refs = {**(current or {}), key: value}
            values: dict[str, Any] = {"refs": refs, "updated_at": now}
            if renew is not None:
                values["lease_until"] = now + renew
            result = conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.id == claim.delivery_id, deliveries.c.lease_token == claim.token
                )
                .values(**values)
            )
            if result.rowcount != 1:
                raise LeaseLost(f"delivery {claim.delivery_id}")

    def renew(self, claims: Sequence[Claim], lease: timedelta) -> set[str]:
        """Extend the leases of `claims` to now + `lease` in one statement (the heartbeat).

        Returns the tokens still ours; a claim missing from the answer lost its delivery.
        """
        if not claims:
            return set()
        with self.engine.begin() as conn:
            renewed = conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.lease_token.in_([c.token for c in claims]),
                    deliveries.c.status == PROCESSING,
                )
                .values(lease_until=self.clock() + lease)
                .returning(deliveries.c.lease_token)
            )
            return {str(r.lease_token) for r in renewed}

    def complete(
        self, claim: Claim, refs: dict[str, Any], *, skipped_reason: str | None = None
    ) -> bool:
        """Mark the delivery done (or skipped, with the reason) and store what was written."""
        return self._finish(
            claim,
            status=SKIPPED if skipped_reason else DONE,
            refs=refs,
            last_error=skipped_reason,
        )

    def retry_later(
        self,
        claim: Claim,
        error: str,
        at: datetime,
        *,
        count_attempt: bool = True,
        unexpected: bool = False,
    ) -> bool:
        """Release the lease and make the delivery due again at `at`.

        `count_attempt=False` gives the attempt back (a parked target); `unexpected` counts one
        more failure of an unclassified error type (see `UNEXPECTED_LIMIT`).
        """
        values: dict[str, Any] = {"status": RETRYING, "last_error": error, "next_attempt_at": at}
        if not count_attempt:
            values["attempts"] = deliveries.c.attempts - 1
        if unexpected:
            values["unexpected_failures"] = deliveries.c.unexpected_failures + 1
        return self._finish(claim, **values)

    def hold_for_review(
        self,
        claim: Claim,
        refs: dict[str, Any],
        reason: str,
        until: datetime,
    ) -> bool:
        """Hold the delivery for a person until `until`; it is due again then (or when assigned)."""
        return self._finish(
            claim, status=REVIEW, refs=refs, last_error=reason, next_attempt_at=until
        )

    def fail(self, claim: Claim, error: str) -> bool:
        """Give the delivery up: status dead, with the reason."""
        return self._finish(claim, status=DEAD, last_error=error)

    def _due_condition(self, now: datetime) -> Any:
        return or_(
            and_(
                deliveries.c.status.in_((PENDING, RETRYING, REVIEW)),
                deliveries.c.next_attempt_at <= now,
            ),
            and_(deliveries.c.status == PROCESSING, deliveries.c.lease_until < now),
        )

    def take_due(
        self, requeue_after: timedelta, limit: int = 200, *, resend: bool = False
    ) -> list[Due]:
        """Deliveries the relay must send queue messages for, marked as queued for `requeue_after`.

        Due deliveries and expired leases, minus those with a message sent less than
        `requeue_after` ago; with `resend` (the relay saw the queue empty, so those messages are
        gone) those too. Several relays (one per worker process) rarely pick the same rows, and
        never on PostgreSQL (``SKIP LOCKED``); a duplicate message is harmless anyway.
        """
        now = self.clock()
        query = select(deliveries.c.id, deliveries.c.attempts).where(self._due_condition(now))
        if not resend:
            query = query.where(
                or_(deliveries.c.queued_until.is_(None), deliveries.c.queued_until <= now)
            )
        with self.engine.begin() as conn:
            due = [
                Due(int(r.id), r.attempts > 0)
                for r in conn.execute(
                    query.order_by(deliveries.c.next_attempt_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ]
            if due:
                conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id.in_([d.delivery_id for d in due]))
                    .values(queued_until=now + requeue_after)
                )
        return due

    def next_due(self) -> datetime | None:
        """When the next delivery falls due (a retry, or a lease running out); ``None``: none."""
        with self.engine.connect() as conn:
            waiting = conn.execute(
                select(func.min(deliveries.c.next_attempt_at)).where(
                    deliveries.c.status.in_((PENDING, RETRYING)),
                    deliveries.c.queued_until.is_(None),
                )
            ).scalar()
            leased = conn.execute(
                select(func.min(deliveries.c.lease_until)).where(deliveries.c.status == PROCESSING)
            ).scalar()
        times = [t for t in (waiting, leased) if t is not None]
        return min(times) if times else None

    # --- parking a target (daily API limits) ---------------------------------------------------

    def park_target(self, target: str, until: datetime, reason: str) -> None:
        """Hold every delivery to `target` until `until` (for example a CRM's daily limit).

        The parking's start (`ParkedTarget.since`) is now, unless the target is parked already.
        """
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(
                select(target_states.c.parked_until, target_states.c.parked_since).where(
                    target_states.c.target == target
                )
            ).first()
            parked = row is not None and row.parked_until is not None and row.parked_until > now
            since = row.parked_since if parked and row and row.parked_since else now
            values = {"parked_until": until, "reason": reason, "parked_since": since}
            if row is None:
                conn.execute(target_states.insert().values(target=target, **values))
            else:
                conn.execute(
                    update(target_states).where(target_states.c.target == target).values(**values)
                )

    def parked(self, target: str) -> tuple[datetime, str] | None:
        """``(until, reason)`` while `target` is parked, else ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(target_states.c.parked_until, target_states.c.reason).where(
                    target_states.c.target == target
                )
            ).first()
        if row is None or row.parked_until is None or row.parked_until <= self.clock():
            return None
        return row.parked_until, row.reason or ""

    def parked_targets(self) -> dict[str, tuple[datetime, str]]:
        """Every target parked right now: ``(until, reason)``."""
        return {p.target: (p.until, p.reason) for p in self.parked_details()}

    def parked_details(self) -> list[ParkedTarget]:
        """Every target parked right now, by name, with since when (``None``: parked before
        the ledger kept it)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(target_states)
                .where(target_states.c.parked_until > self.clock())
                .order_by(target_states.c.target)
            ).all()
        return [
            ParkedTarget(r.target, r.parked_until, r.reason or "", r.parked_since) for r in rows
        ]

    # --- per-target memos ----------------------------------------------------------------------

    def memo_get(self, target: str, key: str) -> str | None:
        """The memo `key` of `target`, or ``None``."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(target_memos.c.value).where(
                    target_memos.c.target == target, target_memos.c.key == key
                )
            ).scalar()
        return None if value is None else str(value)

    def memo_reserve(self, target: str, key: str, value: str) -> bool:
        """Insert the memo unless it exists; ``True`` if this call inserted it."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    target_memos.insert().values(
                        target=target, key=key, value=value, updated_at=self.clock()
                    )
                )
            return True
        except IntegrityError:
            return False

    def memo_set(self, target: str, key: str, value: str) -> None:
        """Insert or replace the memo."""
        if not self.memo_reserve(target, key, value):
            with self.engine.begin() as conn:
                conn.execute(
                    update(target_memos)
                    .where(target_memos.c.target == target, target_memos.c.key == key)
                    .values(value=value, updated_at=self.clock())
                )

    def memo_replace(self, target: str, key: str, expected: str | None, value: str) -> bool:
        """Compare and set: replace the memo only if it still holds `expected` (None: absent)."""
        if expected is None:
            return self.memo_reserve(target, key, value)
        with self.engine.begin() as conn:
            result = conn.execute(
                update(target_memos)
                .where(
                    target_memos.c.target == target,
                    target_memos.c.key == key,
                    target_memos.c.value == expected,
                )
                .values(value=value, updated_at=self.clock())
            )
            return result.rowcount == 1

    def memo_delete(self, target: str, key: str) -> None:
        """Forget the memo."""
        with self.engine.begin() as conn:
            conn.execute(
                target_memos.delete().where(
                    target_memos.c.target == target, target_memos.c.key == key
                )
            )

    # --- operators ----------------------------------------------------------------------------

    def replay(
        self, call_id: str | None = None, *, dead: bool = False, failed: bool = False
    ) -> list[int]:
        """Make deliveries due now, with fresh attempts: every target of `call_id` that is not
        being worked on, or, without it, every dead (`dead`) or retrying (`failed`) delivery.

        Calls whose content retention removed have nothing left to deliver and are left alone.
        Raises `UnknownCall` for a call id the ledger does not know.
        """
        statuses = [s for s, chosen in ((DEAD, dead), (RETRYING, failed)) if chosen]
        if call_id is None and not statuses:
            raise ValueError("Name a call id, or replay dead or failed deliveries.")
        now = self.clock()
        with self.engine.begin() as conn:
            query = (
                update(deliveries)
                .where(deliveries.c.status != PROCESSING)
                .where(
                    deliveries.c.call_pk.in_(
                        select(calls.c.id).where(calls.c.raw_body != CONTENT_REMOVED)
                    )
                )
            )
            if call_id is not None:
                call_pk = conn.execute(
                    select(calls.c.id).where(calls.c.dedupe_key == call_id)
                ).scalar()
                if call_pk is None:
                    raise UnknownCall(call_id)
                query = query.where(deliveries.c.call_pk == call_pk)
            if statuses:
                query = query.where(deliveries.c.status.in_(statuses))
            replayed = conn.execute(
                query.values(
                    status=PENDING,
                    next_attempt_at=now,
                    attempts=0,
                    unexpected_failures=0,
                    queued_until=None,
                    retry_since=now,
                    updated_at=now,
                ).returning(deliveries.c.id)
            )
            return sorted(int(r.id) for r in replayed)

    def recent_calls(
        self, limit: int = 20, call_id: str | None = None, statuses: Sequence[str] = ()
    ) -> list[CallSummary]:
        """The newest calls with every target's delivery state."""
        with self.engine.connect() as conn:
            query = select(calls).order_by(calls.c.id.desc()).limit(limit)
            if call_id is not None:
                query = query.where(calls.c.call_id == call_id)
            if statuses:
                query = query.where(
                    calls.c.id.in_(
                        select(deliveries.c.call_pk).where(deliveries.c.status.in_(statuses))
                    )
                )
            call_rows = conn.execute(query).all()
            by_call: dict[int, list[DeliveryState]] = {r.id: [] for r in call_rows}
            if by_call:
                for d in conn.execute(
                    select(deliveries)
                    .where(deliveries.c.call_pk.in_(by_call))
                    .order_by(deliveries.c.target)
                ):
                    by_call[d.call_pk].append(delivery_state(d))
        return [
            CallSummary(
                call_id=r.call_id,
                received_at=r.received_at,
                start_time=r.start_time,
                direction=r.direction,
                from_number=r.from_number,
                to_number=r.to_number,
                duration_ms=r.duration_ms,
                channel_name=r.channel_name,
                deliveries=tuple(by_call[r.id]),
            )
            for r in call_rows
        ]

    def counts(self) -> dict[str, int]:
        """How many deliveries are in each status."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
            ).all()
        return {status: int(n) for status, n in rows}

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection for read-only reports."""
        with self.engine.connect() as conn:
            yield conn


def _unavailable(url: str, reason: str, path: Path | None) -> LedgerUnavailable:
    hint = f"Is the folder {path.parent} writable?" if path else "Is the database server up?"
    return LedgerUnavailable(f"Cannot open the ledger {url}: {reason}. {hint}")


def delivery_state(row: Any) -> DeliveryState:
    """A `DeliveryState` from a ``deliveries`` row."""
    refs = row.refs
    if isinstance(refs, str):  # defensive: some drivers hand JSON back as text
        refs = json.loads(refs)
    return DeliveryState(
        delivery_id=int(row.id),
        target=row.target,
        status=row.status,
        attempts=int(row.attempts),
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        refs=dict(refs or {}),
    )
