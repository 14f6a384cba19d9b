"""The shared request budgets: sliding-window slots in memory, in SQLite and in Redis.

Redis tests run when ``SIPGATE_TEST_REDIS_URL`` names a Redis server (e.g.
``redis://127.0.0.1:6399/15``); the tests use keys of their own and delete them.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.adapters import RetryableError
from connector.adapters.kit.ratelimit import (
    Budget,
    MemorySlotStore,
    RateLimiter,
    RateLimitStoreError,
    RedisSlotStore,
    SlotStore,
    SqliteSlotStore,
    open_store,
    process_store,
)
from tests.fakes.base import ManualClock

REDIS_URL = os.environ.get("SIPGATE_TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="SIPGATE_TEST_REDIS_URL is not set")


def limiter_on(
    clock: ManualClock, limit: int = 3, window: float = 10.0, **kw: float
) -> RateLimiter:
    return RateLimiter(
        {"general": Budget(limit, window)},
        MemorySlotStore(clock),
        namespace="test",
        in_flight_seconds=kw.get("in_flight_seconds", 60.0),
        max_wait=kw.get("max_wait", 30.0),
        clock=clock,
        sleep=clock.advance,
    )


def test_budgets_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Budget(0, 10.0)
    with pytest.raises(ValueError):
        Budget(5, 0)
    with pytest.raises(ValueError, match="search"):
        limiter_on(ManualClock()).acquire("search")


def test_a_released_slot_frees_one_window_after_its_answer() -> None:
    clock = ManualClock()
    limiter = limiter_on(clock)
    slots = [limiter.try_acquire("general") for _ in range(3)]
    assert all(slots)
    assert limiter.try_acquire("general") is None

    clock.advance(4.0)
    for slot in slots:
        assert slot is not None
        limiter.release(slot)  # answered at t+4: held until t+14
    clock.advance(9.9)
    assert limiter.try_acquire("general") is None
    clock.advance(0.1)
    assert limiter.try_acquire("general") is not None


def test_a_slot_in_flight_stays_taken_until_its_answer() -> None:
    clock = ManualClock()
    limiter = limiter_on(clock, limit=1, in_flight_seconds=300.0)
    slot = limiter.acquire("general")
    clock.advance(200.0)  # a slow request: the server may count it any time until it answers
    assert limiter.try_acquire("general") is None
    limiter.release(slot)
    clock.advance(9.99)
    assert limiter.try_acquire("general") is None
    clock.advance(0.01)
    assert limiter.try_acquire("general") is not None


def test_a_crashed_requests_slot_frees_itself() -> None:
    clock = ManualClock()
    limiter = limiter_on(clock, limit=1, in_flight_seconds=30.0)
    limiter.acquire("general")  # never released
    clock.advance(39.9)
    assert limiter.try_acquire("general") is None
    clock.advance(0.1)
    assert limiter.try_acquire("general") is not None


def test_acquire_waits_for_the_next_free_slot() -> None:
    clock = ManualClock(start=0.0)
    limiter = limiter_on(clock, limit=2, window=10.0)
    with limiter.request("general"), limiter.request("general"):
        pass
    with limiter.request("general"):
        assert clock() == pytest.approx(10.0)  # slept exactly until the first slot freed


def test_acquire_gives_up_after_max_wait_with_retry_after() -> None:
    clock = ManualClock(start=0.0)
    limiter = limiter_on(clock, limit=1, window=10.0, max_wait=5.0)
    limiter.release(limiter.acquire("general"))
    clock.advance(2.0)
    with pytest.raises(RetryableError) as caught:
        limiter.acquire("general")
    assert caught.value.retry_after == pytest.approx(8.0)
    assert clock() == pytest.approx(2.0)  # it did not wait in vain


def test_many_threads_never_exceed_the_budget() -> None:
    clock = ManualClock(start=0.0)
    limiter = limiter_on(clock, limit=5, window=1.0, max_wait=1_000.0)
    admitted: list[float] = []
    lock = threading.Lock()

    def burst() -> None:
        for _ in range(20):
            with limiter.request("general"), lock:
                admitted.append(clock())

    threads = [threading.Thread(target=burst) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 160
    admitted.sort()
    for i, at in enumerate(admitted):
        in_window = [t for t in admitted[i:] if t < at + 1.0]
        assert len(in_window) <= 5


def test_namespaces_and_kinds_have_separate_budgets() -> None:
    clock = ManualClock()
    store = MemorySlotStore(clock)
    budgets = {"general": Budget(1, 10.0), "search": Budget(1, 1.0)}
    first = RateLimiter(budgets, store, namespace="token-a", clock=clock)
    second = RateLimiter(budgets, store, namespace="token-b", clock=clock)
    assert first.try_acquire("general") and first.try_acquire("search")
    assert second.try_acquire("general")
    assert first.try_acquire("general") is None
    same_token = RateLimiter(budgets, store, namespace="token-a", clock=clock)
    assert same_token.try_acquire("general") is None


def test_open_store_by_url(tmp_path: Path) -> None:
    assert open_store(None) is process_store()
    sqlite = open_store(f"sqlite:///{tmp_path / 'slots.db'}")
    assert isinstance(sqlite, SqliteSlotStore)
    sqlite.close()
    assert isinstance(open_store("redis://127.0.0.1:1/0"), RedisSlotStore)  # connects lazily
    for bad in ("postgres://x", "sqlite:///", "sqlite:///:memory:"):
        with pytest.raises(ValueError):
            open_store(bad)


# --- SQLite: shared by processes ------------------------------------------------------------


def _grab(path: str, start: object, attempts: int, results: object) -> None:
    store = SqliteSlotStore(path)
    start.wait(10)  # type: ignore[attr-defined]
    taken = sum(store.reserve("k:general", 5, 60.0)[0] is not None for _ in range(attempts))
    results.put(taken)  # type: ignore[attr-defined]
    store.close()


def test_sqlite_store_is_shared_by_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "slots.db")
    SqliteSlotStore(path).close()
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    workers = [context.Process(target=_grab, args=(path, start, 10, results)) for _ in range(3)]
    for worker in workers:
        worker.start()
    start.set()
    taken = [results.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(10)
    assert sum(taken) == 5  # 30 attempts, one budget of 5 across all processes


def test_sqlite_store_waits_and_settles(tmp_path: Path) -> None:
    clock = ManualClock(start=1_000.0)
    store = SqliteSlotStore(tmp_path / "slots.db", clock=clock)
    slot, _ = store.reserve("k", 1, 60.0)
    assert slot is not None
    assert store.reserve("k", 1, 60.0) == (None, pytest.approx(60.0))
    store.settle("k", slot, 10.0)
    assert store.reserve("k", 1, 60.0) == (None, pytest.approx(10.0))
    clock.advance(10.0)
    assert store.reserve("k", 1, 60.0)[0] is not None
    store.close()


def test_an_unusable_sqlite_store_is_a_retryable_error(tmp_path: Path) -> None:
    (tmp_path / "a-directory.db").mkdir()
    with pytest.raises(RateLimitStoreError):
        SqliteSlotStore(tmp_path / "a-directory.db")


# --- Redis: shared by hosts -------------------------------------------------------------------


@pytest.fixture
def redis_store() -> Iterator[tuple[RedisSlotStore, str]]:
    assert REDIS_URL is not None
    store = RedisSlotStore(REDIS_URL)
    key = f"sipgate-test:{uuid.uuid4().hex}"
    yield store, key
    store._client.delete(key)
    store.close()


@needs_redis
def test_redis_store_counts_slots_across_clients(redis_store: tuple[RedisSlotStore, str]) -> None:
    store, key = redis_store
    others = [RedisSlotStore(REDIS_URL or "") for _ in range(4)]
    taken: list[str] = []
    lock = threading.Lock()

    def grab(client: SlotStore) -> None:
        for _ in range(10):
            slot, _wait = client.reserve(key, 7, 30.0)
            if slot is not None:
                with lock:
                    taken.append(slot)

    threads = [threading.Thread(target=grab, args=(c,)) for c in [store, *others]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(taken) == 7
    slot, wait = store.reserve(key, 7, 30.0)
    assert slot is None and 29.0 < wait <= 30.0
    ttl_ms = store._client.pttl(key)
    assert 29_000 < ttl_ms <= 31_000  # the set expires once its last slot would
    for other in others:
        other.close()


@needs_redis
def test_redis_store_settles_a_slot(redis_store: tuple[RedisSlotStore, str]) -> None:
    store, key = redis_store
    slot, _ = store.reserve(key, 1, 60.0)
    assert slot is not None
    store.settle(key, slot, 0.2)
    assert store.reserve(key, 1, 60.0)[1] <= 0.2
    store.settle(key, "not-a-slot", 100.0)  # a freed slot is not brought back
    assert store._client.zcard(key) == 1


def test_an_unreachable_redis_is_a_retryable_error() -> None:
    store = RedisSlotStore("redis://127.0.0.1:9/0", socket_timeout=0.5)
    with pytest.raises(RateLimitStoreError):
        store.reserve("k", 1, 1.0)
    limiter = RateLimiter({"general": Budget(1, 1.0)}, store)
    with pytest.raises(RetryableError):
        limiter.acquire("general")
