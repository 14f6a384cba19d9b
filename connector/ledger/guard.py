"""Notice when the SQLite ledger file is deleted or replaced under a running service.

SQLite connections keep the file they opened: after an ``rm`` (or a restore that swaps the file)
pooled connections go on committing into an unlinked inode, and every answered webhook is lost.
`FileGuard` keeps the file open itself (so its inode cannot be reused by a new file), and each
time a connection is taken from the pool compares it with what the path names now, so every
transaction, and `Ledger.ping` behind ``/readyz``, fails with `LedgerFileGone` instead; the web
side answers 503 until the service is restarted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

__all__ = ["FileGuard", "LedgerFileGone", "sqlite_path"]


class LedgerFileGone(SQLAlchemyError):
    """The ledger file this process opened was deleted or replaced."""


def sqlite_path(url: str | URL) -> Path | None:
    """The file behind a ``sqlite:///FILE`` URL, or ``None`` (in-memory or not SQLite)."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    return Path(database.removeprefix("file:"))


def _identity(stat: os.stat_result) -> tuple[int, int]:
    return stat.st_dev, stat.st_ino


class FileGuard:
    """Checks, before a connection is handed out, that `path` is still the file first opened."""

    def __init__(self, engine: Engine, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        self._hold()
        event.listen(engine, "checkout", self._check)

    def _hold(self) -> None:
        try:
            self._file = self.path.open("rb")
        except FileNotFoundError:
            # A fresh ledger: the first connection creates the file, the first check holds it.
            self._file = None

    def check(self) -> None:
        """Raise `LedgerFileGone` if the file is missing or another file took its place."""
        if self._file is None:
            self._hold()
        try:
            current = _identity(os.stat(self.path))
        except FileNotFoundError:
            current = None
        if self._file is None or current != _identity(os.fstat(self._file.fileno())):
            raise LedgerFileGone(
                f"The ledger file {self.path} was deleted or replaced while the service ran; "
                "restart the service (with the file restored) to accept calls again."
            )

    def _check(self, _dbapi: Any, _record: Any, _proxy: Any) -> None:
        self.check()
