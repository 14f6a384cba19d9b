"""A consistent copy of a SQLite ledger while the service keeps running (SQLite's backup API)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

__all__ = ["BackupError", "backup_sqlite"]


class BackupError(Exception):
    """The ledger cannot be copied this way (not SQLite, missing, or the copy is damaged)."""


def _sqlite_path(url: str) -> Path:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise BackupError(
            f"The ledger is on {parsed.get_backend_name()}, not SQLite: use that database's own"
            " tools (PostgreSQL: pg_dump --format=custom)."
        )
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("An in-memory ledger cannot be backed up.")
    path = Path(parsed.database)
    if not path.is_file():
        raise BackupError(f"No ledger at {path}.")
    return path


def backup_sqlite(url: str, destination: Path) -> int:
    """Copy the SQLite ledger at `url` to `destination` (one self-contained file); pages copied.

    The copy is one read transaction on the source, so it shows the ledger as of one instant;
    in WAL mode writers go on meanwhile. It is written next to `destination` first, checked
    (``PRAGMA integrity_check``), made durable and then renamed into place, so `destination` is
    either the previous file or a complete copy. Raises `BackupError`.
    """
    source_path = _sqlite_path(url)
    destination = destination.resolve()
    if destination == source_path.resolve():
        raise BackupError("The backup file must not be the ledger itself.")
    partial = destination.with_name(destination.name + ".partial")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(source_path, timeout=15)
    copy = sqlite3.connect(partial)
    try:
        source.backup(copy)  # all pages in one step: one consistent snapshot
        copy.execute("PRAGMA journal_mode=DELETE")  # a single file, no -wal beside it
        [verdict] = copy.execute("PRAGMA integrity_check").fetchone()
        pages = int(copy.execute("PRAGMA page_count").fetchone()[0])
    finally:
        copy.close()
        source.close()
    if verdict != "ok":
        partial.unlink(missing_ok=True)
        raise BackupError(f"The copy failed its integrity check: {verdict}")
    with open(partial, "rb+") as handle:
        os.fsync(handle.fileno())
    partial.replace(destination)
    folder = os.open(destination.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return pages
