"""Where the ``vcon`` target keeps its vCons: one JSON file per call in a folder, or a SQL table.

Both stores hold each call once (a repeated write replaces it), can erase one call or every call
that started before a moment, and answer how many vCons they hold for a call id.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Column, MetaData, String, Table, Text, delete, select
from sqlalchemy.engine import Engine

from connector.adapters.database import sql_write_errors
from connector.sql import UTCDateTime, make_engine, scrub_freed_pages

__all__ = ["FolderStore", "TableStore", "VconStore", "file_name"]

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}\Z")
SUFFIX = ".vcon.json"


def file_name(call_id: str) -> str:
    """``<call_id>.vcon.json``; a call id a file name cannot hold as it is (a ``/``, a leading
    dot, other characters, or too long) is named by its SHA-256 instead."""
    stem = call_id if _SAFE_NAME.match(call_id) else hashlib.sha256(call_id.encode()).hexdigest()
    return f"{stem}{SUFFIX}"


class VconStore(Protocol):
    """What the ``vcon`` target needs of a place to keep vCons."""

    def where(self, call_id: str) -> dict[str, str]:
        """Where the vCon of `call_id` is (or would be) kept: JSON references."""

    def put(self, call_id: str, start: datetime, document: dict[str, Any]) -> None:
        """Keep `document` as the vCon of `call_id`, replacing an earlier one."""

    def count(self, call_id: str) -> int:
        """How many vCons are kept for `call_id` (0 or 1)."""

    def erase(self, call_id: str) -> int:
        """Remove the vCon of `call_id`; how many were removed."""

    def erase_before(self, before: datetime) -> int:
        """Remove the vCons of calls that started before `before`; how many."""

    def ready(self) -> str:
        """Make sure the store can be written (creating it); a line saying so, or `OSError`
        / SQLAlchemy's error."""

    def close(self) -> None:
        """Release what the store holds open."""


def _start_of(path: Path) -> datetime | None:
    try:
        document = json.loads(path.read_text("utf-8"))
        start = datetime.fromisoformat(document["dialog"][0]["start"].replace("Z", "+00:00"))
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None
    return start if start.tzinfo else start.replace(tzinfo=UTC)


class FolderStore:
    """One ``<call_id>.vcon.json`` per call in `folder`, written atomically (a temporary file in
    the same folder, flushed to disk, then renamed over the old one); files are private (0600)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def where(self, call_id: str) -> dict[str, str]:
        return {"file": str(self.folder / file_name(call_id))}

    def put(self, call_id: str, start: datetime, document: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        data = json.dumps(document, ensure_ascii=False, indent=2).encode()
        handle, temporary = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.folder / file_name(call_id))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        directory = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a crash
        finally:
            os.close(directory)

    def count(self, call_id: str) -> int:
        return int((self.folder / file_name(call_id)).is_file())

    def erase(self, call_id: str) -> int:
        path = self.folder / file_name(call_id)
        if not path.is_file():
            return 0
        path.unlink()
        return 1

    def erase_before(self, before: datetime) -> int:
        removed = 0
        for path in sorted(self.folder.glob(f"*{SUFFIX}")):
            start = _start_of(path)
            if start is not None and start < before:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def ready(self) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=self.folder):
            pass
        return f"Folder {self.folder} is writable."

    def close(self) -> None:
        return None


class TableStore:
    """One row per call in `table` (``call_id``, ``start_time``, ``written_at``, ``vcon`` as JSON
    text) of the SQL database at `url`; the table is created when missing."""

    def __init__(self, url: str, table: str, engine: Engine | None = None) -> None:
        self.engine = engine or make_engine(url)
        self.metadata = MetaData()
        self.table = Table(
            table,
            self.metadata,
            Column("call_id", String(255), primary_key=True),
            Column("start_time", UTCDateTime(), nullable=False, index=True),
            Column("written_at", UTCDateTime(), nullable=False),
            Column("vcon", Text(), nullable=False),
        )
        self._created = False

    def _ensure(self) -> None:
        if not self._created:
            self.metadata.create_all(self.engine)
            self._created = True

    def where(self, call_id: str) -> dict[str, str]:
        return {"table": self.table.name, "call_id": call_id}

    def put(self, call_id: str, start: datetime, document: dict[str, Any]) -> None:
        with sql_write_errors():
            self._ensure()
            with self.engine.begin() as conn:
                conn.execute(delete(self.table).where(self.table.c.call_id == call_id))
                conn.execute(
                    self.table.insert(),
                    {
                        "call_id": call_id,
                        "start_time": start,
                        "written_at": datetime.now(UTC),
                        "vcon": json.dumps(document, ensure_ascii=False),
                    },
                )

    def document(self, call_id: str) -> dict[str, Any] | None:
        """The stored vCon of `call_id`, or ``None``."""
        self._ensure()
        with self.engine.connect() as conn:
            text = conn.execute(
                select(self.table.c.vcon).where(self.table.c.call_id == call_id)
            ).scalar()
        return json.loads(text) if text is not None else None

    def count(self, call_id: str) -> int:
        self._ensure()
        with self.engine.connect() as conn:
            rows = conn.execute(select(self.table.c.call_id).where(self.table.c.call_id == call_id))
            return len(rows.all())

    def _erase(self, condition: Any) -> int:
        self._ensure()
        with self.engine.begin() as conn:
            removed = int(conn.execute(delete(self.table).where(condition)).rowcount)
        if removed:
            scrub_freed_pages(self.engine)
        return removed

    def erase(self, call_id: str) -> int:
        return self._erase(self.table.c.call_id == call_id)

    def erase_before(self, before: datetime) -> int:
        return self._erase(self.table.c.start_time < before)

    def ready(self) -> str:
        self._ensure()
        with self.engine.connect() as conn:
            conn.execute(select(self.table.c.call_id).limit(1)).all()
        return f"Table {self.table.name} is ready."

    def close(self) -> None:
        self.engine.dispose()
