"""Client-side request budgets shared by everything that talks to one API with one credential.

A CRM such as HubSpot allows, per app, at most N requests in any rolling window (HubSpot: 100 or
more per 10 s, and 5 searches per second). Several worker processes that each count on their own
overrun that together; `RateLimiter` makes them share one count.

The count is a sliding-window log of *slots*: `RateLimiter.acquire` takes a slot (waiting for one
when all are taken), the request is sent, and `RateLimiter.release` keeps the slot for one more
window measured from the moment the answer arrived. The server saw the request at some moment
between taking the slot and getting the answer, so a slot is held for at least the window the
server counts it in, whatever the network did: a request in flight keeps its slot (up to
``in_flight_seconds``, after which a crashed worker's slot frees itself).

Where the slots live (`open_store`):

* ``None``: in this process (`MemorySlotStore`, a lock and a dict), shared by every adapter in
  the process that uses the same namespace;
* ``sqlite:///FILE``: a small table in a SQLite file, updated in ``BEGIN IMMEDIATE``
  transactions, for worker processes on one host (`SqliteSlotStore`);
* ``redis://…`` / ``rediss://…``: a sorted set per budget updated by a Lua script that reads the
  Redis server's clock, for workers on several hosts (`RedisSlotStore`).

`RateLimiter.acquire` never waits longer than ``max_wait`` seconds: when the next free slot is
further away it raises `RetryableError` with that delay as ``retry_after``, so a delivery is
rescheduled instead of blocking a worker. Store failures are `RetryableError` too.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connector.adapters.kit.errors import RetryableError
from connector.adapters.kit.observe import record_rate_limit_wait

__all__ = [
    "Budget",
    "MemorySlotStore",
    "RateLimitStoreError",
    "RateLimiter",
    "RedisSlotStore",
    "Slot",
    "SlotStore",
    "SqliteSlotStore",
    "open_store",
    "process_store",
]

Clock = Callable[[], float]

log = logging.getLogger(__name__)


class RateLimitStoreError(RetryableError):
    """The shared slot store (SQLite file, Redis) could not be used; try again later."""


@dataclass(frozen=True)
class Budget:
    """At most `limit` requests in any `window` seconds."""

    limit: int
    window: float

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window <= 0:
            raise ValueError("A budget needs a limit of at least 1 and a positive window.")


@dataclass(frozen=True)
class Slot:
    """A request slot taken with `RateLimiter.acquire`; give it back with `RateLimiter.release`."""

    kind: str
    key: str
    id: str
    window: float


class SlotStore(ABC):
    """Where slots are counted. Every operation is atomic across all users of the store."""

    @abstractmethod
    def reserve(self, key: str, limit: int, hold: float) -> tuple[str | None, float]:
        """Take a slot of `key` if fewer than `limit` are held, holding it `hold` seconds.

        Returns ``(slot id, 0.0)``, or ``(None, seconds until the earliest held slot frees)``.
        """

    @abstractmethod
    def settle(self, key: str, slot_id: str, hold: float) -> None:
        """Hold `slot_id` for `hold` seconds from now instead (nothing if it was freed already)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default has none."""


class MemorySlotStore(SlotStore):
    """Slots in a dict guarded by a lock: shared by the threads of one process."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._slots: dict[str, dict[str, float]] = {}

    def reserve(self, key: str, limit: int, hold: float) -> tuple[str | None, float]:
        with self._lock:
            now = self.clock()
            held = self._slots.setdefault(key, {})
            for slot_id in [s for s, until in held.items() if until <= now]:
                del held[slot_id]
            if len(held) < limit:
                slot_id = uuid.uuid4().hex
                held[slot_id] = now + hold
                return slot_id, 0.0
            return None, max(min(held.values()) - now, 0.0)

    def settle(self, key: str, slot_id: str, hold: float) -> None:
        with self._lock:
            held = self._slots.get(key, {})
            if slot_id in held:
                held[slot_id] = self.clock() + hold


class SqliteSlotStore(SlotStore):
    """Slots in a table of a SQLite file: shared by the processes of one host.

    Each thread gets its own connection; `reserve` runs in a ``BEGIN IMMEDIATE`` transaction, so
    concurrent reservations are serialised by SQLite's write lock. Times are wall-clock seconds
    (`time.time`), the one clock all processes of a host share.
    """

    def __init__(self, path: str | Path, clock: Clock = time.time, busy_timeout: float = 10.0):
        self.path = Path(path)
        self.clock = clock
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._connection()
            conn.execute(
                "CREATE TABLE IF NOT EXISTS rate_slots ("
                " slot TEXT PRIMARY KEY, key TEXT NOT NULL, until REAL NOT NULL)"
            )
            conn.execute("CREATE INDEX IF NOT EXISTS rate_slots_key ON rate_slots (key, until)")
        except (sqlite3.Error, OSError) as exc:
            raise RateLimitStoreError(f"Rate limit store unusable: {type(exc).__name__}") from exc

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def reserve(self, key: str, limit: int, hold: float) -> tuple[str | None, float]:
        try:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                now = self.clock()
                conn.execute("DELETE FROM rate_slots WHERE key = ? AND until <= ?", (key, now))
                count, earliest = conn.execute(
                    "SELECT COUNT(*), MIN(until) FROM rate_slots WHERE key = ?", (key,)
                ).fetchone()
                if count < limit:
                    slot_id = uuid.uuid4().hex
                    conn.execute(
                        "INSERT INTO rate_slots (slot, key, until) VALUES (?, ?, ?)",
                        (slot_id, key, now + hold),
                    )
                    conn.execute("COMMIT")
                    return slot_id, 0.0
                conn.execute("COMMIT")
                return None, max(float(earliest) - now, 0.0)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise RateLimitStoreError(f"Rate limit store unusable: {type(exc).__name__}") from exc

    def settle(self, key: str, slot_id: str, hold: float) -> None:
        try:
            self._connection().execute(
                "UPDATE rate_slots SET until = ? WHERE slot = ? AND key = ?",
                (self.clock() + hold, slot_id, key),
            )
        except sqlite3.Error as exc:
            raise RateLimitStoreError(f"Rate limit store unusable: {type(exc).__name__}") from exc

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()


# KEYS[1] = budget key; ARGV = limit, hold in ms, new slot id. Returns {1, 0} or {0, wait ms}.
# The clock is the Redis server's (TIME), so hosts with skewed clocks still agree.
_RESERVE_LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local key = KEYS[1]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZCARD', key) < tonumber(ARGV[1]) then
  redis.call('ZADD', key, now + tonumber(ARGV[2]), ARGV[3])
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', key, math.max(1, tonumber(last[2]) - now) + 1000)
  return {1, 0}
end
local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, math.max(0, tonumber(first[2]) - now)}
"""

# KEYS[1] = budget key; ARGV = slot id, hold in ms.
_SETTLE_LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local key = KEYS[1]
if redis.call('ZSCORE', key, ARGV[1]) then
  redis.call('ZADD', key, 'XX', now + tonumber(ARGV[2]), ARGV[1])
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', key, math.max(1, tonumber(last[2]) - now) + 1000)
end
return 1
"""


class RedisSlotStore(SlotStore):
    """Slots in a Redis sorted set per budget (score = until, ms): shared by several hosts."""

    def __init__(self, url: str, socket_timeout: float = 5.0) -> None:
        import redis

        self.url = url
        self._redis_error: type[Exception] = redis.RedisError
        self._client = redis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
        )
        self._reserve = self._client.register_script(_RESERVE_LUA)
        self._settle = self._client.register_script(_SETTLE_LUA)

    def reserve(self, key: str, limit: int, hold: float) -> tuple[str | None, float]:
        slot_id = uuid.uuid4().hex
        try:
            taken, wait_ms = self._reserve(keys=[key], args=[limit, int(hold * 1000), slot_id])
        except self._redis_error as exc:
            raise RateLimitStoreError(f"Rate limit store unusable: {type(exc).__name__}") from exc
        if int(taken) == 1:
            return slot_id, 0.0
        return None, int(wait_ms) / 1000

    def settle(self, key: str, slot_id: str, hold: float) -> None:
        try:
            self._settle(keys=[key], args=[slot_id, int(hold * 1000)])
        except self._redis_error as exc:
            raise RateLimitStoreError(f"Rate limit store unusable: {type(exc).__name__}") from exc

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


_PROCESS_STORE = MemorySlotStore()


def process_store() -> MemorySlotStore:
    """The in-process store every limiter without a configured store shares."""
    return _PROCESS_STORE


def open_store(url: str | None) -> SlotStore:
    """The store for `url`: ``None`` (this process), ``sqlite:///FILE`` or ``redis://…``.

    Raises ValueError for any other scheme.
    """
    if url is None or url == "":
        return _PROCESS_STORE
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///").partition("?")[0]
        if not path or path == ":memory:":
            raise ValueError("A SQLite rate limit store needs a file: sqlite:///path/to/file.db")
        return SqliteSlotStore(path)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisSlotStore(url)
    raise ValueError("A rate limit store is sqlite:///FILE or redis://HOST:PORT/DB.")


class RateLimiter:
    """Hands out request slots of named budgets (e.g. ``general``, ``search``) from a store.

    `namespace` separates the budgets of different credentials in a shared store. A slot is held
    from `acquire` until one budget window after `release` (at most `in_flight_seconds` plus a
    window while the request has not returned). `clock` measures waiting (and `sleep` waits);
    both are injectable so tests and benchmarks can run on a manual clock. Every `acquire` that
    had to wait is counted for `target` (the target's name; the namespace when not given) in
    ``sipgate_crm_rate_limit_waits_total`` and ``…_wait_seconds_total``.
    """

    def __init__(
        self,
        budgets: Mapping[str, Budget],
        store: SlotStore | None = None,
        *,
        namespace: str = "",
        in_flight_seconds: float = 60.0,
        max_wait: float = 30.0,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], Any] = time.sleep,
        target: str = "",
    ) -> None:
        self.budgets = dict(budgets)
        self.target = target or namespace
        self.store = store if store is not None else _PROCESS_STORE
        self.namespace = namespace
        self.in_flight_seconds = in_flight_seconds
        self.max_wait = max_wait
        self.clock = clock
        self.sleep = sleep

    def _budget(self, kind: str) -> Budget:
        try:
            return self.budgets[kind]
        except KeyError:
            raise ValueError(f"No request budget named {kind!r}.") from None

    def try_acquire(self, kind: str) -> Slot | None:
        """A slot of budget `kind` if one is free right now, else ``None``; never waits."""
        budget = self._budget(kind)
        key = f"{self.namespace}:{kind}"
        slot_id, _wait = self.store.reserve(
            key, budget.limit, budget.window + self.in_flight_seconds
        )
        return Slot(kind, key, slot_id, budget.window) if slot_id is not None else None

    def acquire(self, kind: str) -> Slot:
        """A slot of budget `kind`, waiting for one as long as needed but at most `max_wait`.

        Raises `RetryableError` (``retry_after`` = when a slot frees) instead of waiting longer,
        and `RateLimitStoreError` when the store cannot be used. Time spent waiting is reported
        (`record_rate_limit_wait`), also when the wait ends in that `RetryableError`.
        """
        budget = self._budget(kind)
        key = f"{self.namespace}:{kind}"
        hold = budget.window + self.in_flight_seconds
        started = self.clock()
        deadline = started + self.max_wait
        waited = False
        try:
            while True:
                slot_id, wait = self.store.reserve(key, budget.limit, hold)
                if slot_id is not None:
                    return Slot(kind, key, slot_id, budget.window)
                wait = max(wait, 0.001)
                if self.clock() + wait > deadline:
                    raise RetryableError(
                        f"The {kind} request budget ({budget.limit} per {budget.window:g} s) is "
                        f"used up for the next {wait:.1f} s.",
                        retry_after=wait,
                    )
                waited = True
                self.sleep(wait)
        finally:
            if waited:
                record_rate_limit_wait(self.target, self.clock() - started)

    def release(self, slot: Slot) -> None:
        """The request of `slot` got its answer (or failed): hold the slot one more window.

        Never raises: it runs after a request whose result must not be lost. When the store
        cannot be updated the slot keeps its in-flight hold and frees itself later.
        """
        try:
            self.store.settle(slot.key, slot.id, slot.window)
        except RateLimitStoreError as exc:
            log.warning("Could not release a %s request slot: %s", slot.kind, exc)

    @contextmanager
    def request(self, kind: str) -> Iterator[Slot]:
        """``with limiter.request("general"):`` around one request: acquire, then release."""
        slot = self.acquire(kind)
        try:
            yield slot
        finally:
            self.release(slot)

    def close(self) -> None:
        """Close the store unless it is the shared in-process one."""
        if self.store is not _PROCESS_STORE:
            self.store.close()
