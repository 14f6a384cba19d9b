"""One pooled DBAPI connection kept by a writer that runs one transaction at a time.

The webhook's group commit has one leader per process at any moment, and its transaction's own
Python work is a few microseconds; a pool checkout, the reset on check-in and the checkout
events cost several times that. `HeldConnection` checks a connection out of the engine's pool
once and keeps it, so the pool's bookkeeping (and its pre-ping on PostgreSQL) no longer runs per
transaction. What the checkout did for us stays: `before_use` (the deleted-ledger guard) runs
before every transaction, and a connection the database dropped is discarded so the next use
checks out a fresh one.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlalchemy.pool import PoolProxiedConnection

__all__ = ["HeldConnection"]


class HeldConnection:
    """A connection of `engine` for one user at a time; the caller serialises the uses."""

    def __init__(self, engine: Engine, before_use: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self._before_use = before_use
        self._connection: PoolProxiedConnection | None = None
        self._pid = 0

    def get(self) -> PoolProxiedConnection:
        """The held connection, checked out on first use (and again in a forked child, which
        must not share its parent's)."""
        if self._connection is None or self._pid != os.getpid():
            self._connection = self.engine.raw_connection()  # runs the checkout events
            self._pid = os.getpid()
        elif self._before_use is not None:
            self._before_use()
        return self._connection

    def discard(self, error: BaseException | None = None) -> None:
        """Stop holding the connection (after the database dropped it, or on close)."""
        connection, self._connection = self._connection, None
        if connection is None or self._pid != os.getpid():
            return
        if error is not None:
            connection.invalidate(error)
        connection.close()
