"""The ``database`` target: every call in normalised tables of any SQL database, for BI tools.

Tables (names prefixed with ``table_prefix``, default ``sipgate_``): ``calls`` (one row per call),
``participants``, ``key_points``, ``topics``, ``action_items``, ``small_talk``,
``transcript_chunks`` and ``rendered_fields`` (the mapping's templates, rendered), each keyed by
``call_id``. A call is written in one transaction that first
removes what an earlier attempt wrote, so a delivery can be repeated any number of times and the
tables hold each call exactly once. With ``retention_days`` the worker deletes calls that started
longer ago than that; ``sipgate-crm purge`` erases calls on demand.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from marshmallow import validate
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    inspect,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError

from connector.adapters import (
    Adapter,
    CallReport,
    CheckResult,
    DeliveryJob,
    Journal,
    PermanentError,
    RetryableError,
    WriteResult,
    option,
)
from connector.sql import UTCDateTime, make_engine, scrub_freed_pages

__all__ = ["DatabaseAdapter", "DatabaseOptions", "sql_write_errors", "warehouse_tables"]


@dataclass(frozen=True)
class DatabaseOptions:
    """Options of a ``database`` target."""

    url: str = option("sqlite:///data/calls.db", help="SQLAlchemy URL of the database.")
    table_prefix: str = option(
        "sipgate_",
        validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,30}$|^$"),
        help="Prefix of the table names.",
    )
    store_transcript: bool = option(True, help="Store the transcript chunks too.")
    retention_days: int | None = option(
        None,
        validate=validate.Range(min=1),
        help="Delete calls that started more than this many days ago (none: keep them).",
    )


def warehouse_tables(prefix: str) -> tuple[MetaData, dict[str, Table]]:
    """The normalised tables, named with `prefix`."""
    md = MetaData()

    def child(name: str, *columns: Column[Any]) -> Table:
        return Table(
            f"{prefix}{name}",
            md,
            Column("call_id", String(255), nullable=False, index=True),
            Column("position", Integer(), nullable=False),
            *columns,
        )

    tables = {
        "calls": Table(
            f"{prefix}calls",
            md,
            Column("call_id", String(255), primary_key=True),
            Column("payload_version", String(20), nullable=False),
            Column("direction", String(3), nullable=False),
            Column("from_number", String(64), nullable=False),
            Column("to_number", String(64), nullable=False),
            Column("start_time", UTCDateTime(), nullable=False),
            Column("end_time", UTCDateTime(), nullable=True),
            Column("duration_ms", BigInteger(), nullable=False),
            Column("channel_id", String(255), nullable=True),
            Column("channel_name", String(255), nullable=True),
            Column("llm_provider", String(64), nullable=True),
            Column("headline", Text(), nullable=False),
            Column("summary", Text(), nullable=False),
            Column("transcript", Text(), nullable=True),
            Column("written_at", UTCDateTime(), nullable=False),
        ),
        "participants": child(
            "participants",
            Column("role", String(16), nullable=False),  # caller, callee, user
            Column("number", String(64), nullable=True),
            Column("user_id", String(64), nullable=True),
            Column("full_user_id", String(128), nullable=True),
            Column("account_id", String(64), nullable=True),
            Column("full_name", String(255), nullable=True),
        ),
        "key_points": child("key_points", Column("text", Text(), nullable=False)),
        "topics": child("topics", Column("topic", Text(), nullable=False)),
        "action_items": child("action_items", Column("text", Text(), nullable=False)),
        "small_talk": child(
            "small_talk",
            Column("topic", Text(), nullable=False),
            Column("description", Text(), nullable=False),
        ),
        "rendered_fields": child(
            "rendered_fields",
            Column("field", String(255), nullable=False),
            Column("value", Text(), nullable=False),
        ),
        "transcript_chunks": child(
            "transcript_chunks",
            Column("speaker", String(32), nullable=False),
            Column("start_ms", BigInteger(), nullable=True),
            Column("end_ms", BigInteger(), nullable=True),
            Column("content", Text(), nullable=False),
        ),
    }
    return md, tables


@contextmanager
def sql_write_errors() -> Iterator[None]:
    """Turn what SQLAlchemy raises while a call is written into the adapter errors: unavailable,
    a lost connection or a concurrent write of the same call retry; anything else is permanent."""
    try:
        yield
    except OperationalError as exc:
        raise RetryableError(f"Database unavailable: {type(exc.orig).__name__}") from exc
    except IntegrityError as exc:
        # Another worker wrote the same call at the same moment (a lease that ran out).
        raise RetryableError("Concurrent write of the same call; trying again") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise RetryableError("Database connection lost") from exc
        raise PermanentError(f"Database rejected the call: {type(exc.orig).__name__}") from exc


def _rows(
    report: CallReport, with_transcript: bool, rendered: Mapping[str, Any]
) -> dict[str, list[dict[str, Any]]]:
    cid = report.call_id
    blank = {
        "number": None,
        "user_id": None,
        "full_user_id": None,
        "account_id": None,
        "full_name": None,
    }
    participants = [
        {**blank, "role": "caller", "number": report.from_number},
        {**blank, "role": "callee", "number": report.to_number},
    ] + [
        {
            **blank,
            "role": "user",
            "user_id": u.user_id,
            "full_user_id": u.full_user_id,
            "account_id": u.account_id,
            "full_name": u.full_name,
        }
        for u in report.users
    ]
    rows: dict[str, list[dict[str, Any]]] = {
        "calls": [
            {
                "call_id": cid,
                "payload_version": report.payload_version,
                "direction": report.direction,
                "from_number": report.from_number,
                "to_number": report.to_number,
                "start_time": report.start_time,
                "end_time": report.end_time,
                "duration_ms": report.duration // timedelta(milliseconds=1),
                "channel_id": report.channel.id if report.channel else None,
                "channel_name": report.channel.name if report.channel else None,
                "llm_provider": report.llm_provider,
                "headline": report.headline,
                "summary": report.summary,
                "transcript": report.transcript if with_transcript else None,
                "written_at": datetime.now(UTC),
            }
        ],
        "participants": participants,
        "key_points": [{"text": p} for p in report.key_points],
        "topics": [{"topic": t} for t in report.topics],
        "action_items": [{"text": a.content} for a in report.action_items],
        "small_talk": [{"topic": s.topic, "description": s.description} for s in report.small_talk],
        "rendered_fields": [{"field": k, "value": str(v)} for k, v in rendered.items()],
        "transcript_chunks": [
            {"speaker": c.speaker, "start_ms": c.start_ms, "end_ms": c.end_ms, "content": c.content}
            for c in report.transcript_chunks
        ]
        if with_transcript
        else [],
    }
    for name, items in rows.items():
        if name != "calls":
            for position, item in enumerate(items):
                item.update(call_id=cid, position=position)
    return rows


def _fit(table: Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cut text to the columns' lengths: PostgreSQL rejects what SQLite would store."""
    limits = {
        c.name: c.type.length
        for c in table.columns
        if isinstance(c.type, String) and c.type.length and c.name != "call_id"
    }
    return [
        {k: v[: limits[k]] if k in limits and isinstance(v, str) else v for k, v in row.items()}
        for row in rows
    ]


class DatabaseAdapter(Adapter):
    """Writes calls into normalised SQL tables; idempotent per call id."""

    type_name = "database"
    options_type = DatabaseOptions
    default_mapping = resources.files(__package__) / "database.yaml"
    options: DatabaseOptions

    def __init__(self, name: str, options: DatabaseOptions, engine: Engine | None = None) -> None:
        super().__init__(name, options)
        self.engine = engine or make_engine(options.url)
        self.metadata, self.tables = warehouse_tables(options.table_prefix)
        self._created = False

    def _ensure_tables(self) -> None:
        if not self._created:
            self.metadata.create_all(self.engine)
            self._created = True

    def check(self) -> list[CheckResult]:
        """The database answers and the tables exist (they are created when missing)."""
        try:
            self._ensure_tables()
            names = set(inspect(self.engine).get_table_names())
        except SQLAlchemyError as exc:
            return [CheckResult(False, f"Cannot reach the database: {type(exc).__name__}: {exc}")]
        missing = sorted(t.name for t in self.tables.values() if t.name not in names)
        if missing:
            return [CheckResult(False, f"Tables missing: {', '.join(missing)}")]
        return [CheckResult(True, f"Database reachable; {len(self.tables)} tables ready.")]

    def write(self, job: DeliveryJob, journal: Journal) -> WriteResult:
        """Replace whatever an earlier attempt wrote for this call id with the call, atomically."""
        report = job.report
        with sql_write_errors():
            self._ensure_tables()
            rows = _rows(report, self.options.store_transcript, job.fields)
            with self.engine.begin() as conn:
                for table in self.tables.values():
                    conn.execute(delete(table).where(table.c.call_id == report.call_id))
                for name, items in rows.items():
                    if items:
                        table = self.tables[name]
                        conn.execute(table.insert(), _fit(table, items))
        return WriteResult(refs={"table": self.tables["calls"].name, "call_id": report.call_id})

    def erase_call(self, call_id: str) -> int:
        """Delete every row of `call_id` from every table; returns how many calls rows went."""
        return self._erase(self.tables["calls"].c.call_id == call_id)

    def erase_before(self, before: datetime) -> int:
        """Delete the calls that started before `before`; returns how many."""
        return self._erase(self.tables["calls"].c.start_time < before)

    def remove_expired(self, now: datetime) -> int:
        """Delete the calls older than ``retention_days`` (none without it); returns how many."""
        days = self.options.retention_days
        return self.erase_before(now - timedelta(days=days)) if days else 0

    def _erase(self, condition: Any) -> int:
        self._ensure_tables()
        calls = self.tables["calls"]
        with self.engine.begin() as conn:
            ids = select(calls.c.call_id).where(condition).scalar_subquery()
            for name, table in self.tables.items():
                if name != "calls":
                    conn.execute(delete(table).where(table.c.call_id.in_(ids)))
            removed = int(conn.execute(delete(calls).where(condition)).rowcount)
        if removed:
            scrub_freed_pages(self.engine)
        return removed

    def count_calls(self, call_id: str) -> int:
        """How many rows the calls table holds for `call_id` (0 or 1 if all is well)."""
        self._ensure_tables()
        calls = self.tables["calls"]
        with self.engine.connect() as conn:
            return len(
                conn.execute(select(calls.c.call_id).where(calls.c.call_id == call_id)).all()
            )

    def close(self) -> None:
        """Dispose of the connection pool."""
        self.engine.dispose()
