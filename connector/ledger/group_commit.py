"""Group commit: the webhook inserts of concurrent requests share one transaction and one fsync.

A durable commit costs a disk flush, and a flush costs the same for one call as for eight. Each
request hands its rows to `GroupCommit.run` and blocks; one thread at a time (the *leader*) takes
every request waiting at that moment, writes them in one transaction and commits it, then wakes
each request with its own result. A request is answered only after the transaction holding its
rows has committed, so group commit changes how often the disk is flushed, never what a 2xx
promises. Should a shared transaction fail, every request of it is tried again alone, so one bad
row never fails another request's call.

SQLite lets one process write at a time and makes the others poll with growing sleeps (1, 2, 5,
10 … ms), which under load leaves requests waiting far longer than the write they wait for. For a
SQLite file the leaders of all processes therefore queue on an advisory lock file next to the
database (``<ledger>.writer``), which wakes the next leader the moment the previous one is done.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Generic, TypeVar, cast

__all__ = ["GroupCommit", "WriterLock"]

Item = TypeVar("Item")
Result = TypeVar("Result")


class WriterLock:
    """An exclusive ``flock`` on a file, one holder across all processes of the machine.

    The file is opened per process (a descriptor inherited across ``fork`` would make parent and
    children one holder), so it is safe to create before gunicorn forks its workers.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        self._pid = 0

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock inside the block; waiting for it releases the GIL.

        The lock only spares SQLite's polling; when its file cannot be opened (a read-only or
        vanished folder) the block runs without it and SQLite's own locking decides.
        """
        if self._file is None or self._pid != os.getpid():
            try:
                self._file = self.path.open("ab")
            except OSError:
                yield
                return
            self._pid = os.getpid()
        fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)


@dataclass
class _Request(Generic[Item, Result]):
    item: Item
    done: bool = False
    result: Result | None = None
    error: BaseException | None = field(default=None, repr=False)


class GroupCommit(Generic[Item, Result]):
    """Runs `write` (one transaction for a batch of items) for the items of concurrent callers.

    `write` gets a non-empty batch and returns one result per item, in order, after its commit;
    it raises when the transaction failed. `max_batch` bounds one transaction. `lock` is held
    around every transaction (e.g. a `WriterLock`).
    """

    def __init__(
        self,
        write: Callable[[Sequence[Item]], Sequence[Result]],
        *,
        lock: Callable[[], AbstractContextManager[None]] = nullcontext,
        max_batch: int = 64,
    ) -> None:
        self._write = write
        self._lock = lock
        self._max_batch = max_batch
        self._waiting: list[_Request[Item, Result]] = []
        self._queue_lock = threading.Lock()
        self._leader = threading.Lock()

    @property
    def waiting(self) -> int:
        """How many calls wait for a transaction to take them."""
        with self._queue_lock:
            return len(self._waiting)

    def run(self, item: Item) -> Result:
        """`item`'s result once a committed transaction holds it; its error if it failed alone."""
        request: _Request[Item, Result] = _Request(item)
        with self._queue_lock:
            self._waiting.append(request)
        while True:
            with self._leader:
                if not request.done:
                    with self._queue_lock:
                        batch = self._waiting[: self._max_batch]
                        del self._waiting[: self._max_batch]
                    if batch:
                        self._commit(batch)
            if request.done:
                break
        if request.error is not None:
            raise request.error
        return cast(Result, request.result)

    def _commit(self, batch: list[_Request[Item, Result]]) -> None:
        try:
            with self._lock():
                results = self._write([request.item for request in batch])
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
                batch[0].done = True
                return
            for request in batch:  # one failing item must not fail the others
                self._commit([request])
            return
        except BaseException as exc:  # e.g. the process is stopping: nobody may wait for ever
            for request in batch:
                request.error = exc
                request.done = True
            raise
        for request, result in zip(batch, results, strict=True):
            request.result = result
            request.done = True
