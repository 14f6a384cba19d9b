"""SQL plumbing shared by the ledger and SQL targets: durable SQLite engines, UTC timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator

__all__ = ["UTCDateTime", "make_engine", "scrub_freed_pages"]


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored without zone (SQLite has none) and always read back as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Deleted rows are overwritten with zeros, so erased personal data leaves the file.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get their folder created and durable WAL pragmas."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # hide_parameters: values (phone numbers, names) never appear in error messages or logs.
        engine = create_engine(url, connect_args={"timeout": 15}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def scrub_freed_pages(engine: Engine) -> bool:
    """Make what was deleted unreadable on disk; ``False`` if SQLite could not finish now.

    SQLite (``secure_delete`` on) has zeroed the deleted bytes in the newest page versions, but
    older versions of those pages may still sit in the write-ahead log: a ``TRUNCATE``
    checkpoint copies the newest versions into the database file and empties the log. It waits
    for readers (busy timeout) and reports ``False`` when one kept it from finishing. Other
    databases keep no such copies in files we control: ``True``.
    """
    if engine.dialect.name != "sqlite":
        return True
    with engine.connect() as conn:
        busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").scalar()
    return not busy
