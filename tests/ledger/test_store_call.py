"""`Ledger.store_call`, the webhook's one transaction: what it writes reads back like any row."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from connector.ledger.ledger import _DELIVERY_COLUMNS, Ledger, _new_delivery
from connector.ledger.prepared import PreparedInsert
from connector.ledger.tables import PENDING, calls, deliveries
from connector.payload import parse_report


def test_rows_written_on_the_dbapi_connection_read_back_through_sqlalchemy(
    tmp_path: Path, example_v1: dict[str, Any]
) -> None:
    ledger = Ledger.from_url(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.migrate()
    report = parse_report(example_v1)
    body = json.dumps(example_v1).encode()
    ids = ledger.store_call(report, body, ["a", "b"])
    assert ids is not None and len(ids) == 2
    with ledger.connection() as conn:
        call = conn.execute(select(calls)).one()
        rows = conn.execute(select(deliveries).order_by(deliveries.c.id)).all()
    assert bytes(call.raw_body) == body
    assert (call.call_id, call.dedupe_key) == (report.call_id, report.call_id)
    assert call.start_time == report.start_time  # aware UTC again
    assert call.duration_ms == report.duration.total_seconds() * 1000
    assert call.from_number == report.from_number
    assert call.channel_name == (report.channel.name if report.channel else None)
    assert call.received_at.tzinfo is not None
    assert [(r.id, r.target, r.status, r.refs, r.call_pk) for r in rows] == [
        (ids[0], "a", PENDING, {}, call.id),
        (ids[1], "b", PENDING, {}, call.id),
    ]
    assert rows[0].next_attempt_at == rows[0].created_at == call.received_at
    assert ledger.store_call(report, body, ["a", "b"]) is None


def test_a_storage_failure_is_a_sqlalchemy_error(
    tmp_path: Path, example_v1: dict[str, Any]
) -> None:
    ledger = Ledger.from_url(f"sqlite:///{tmp_path / 'not-migrated.db'}")  # no tables
    with pytest.raises(SQLAlchemyError):
        ledger.store_call(parse_report(example_v1), b"{}", ["a"])


def test_a_prepared_insert_must_bind_every_column_sqlalchemy_would() -> None:
    # `attempts` has a column default: leaving it out would silently store NULL.
    with pytest.raises(ValueError, match="attempts"):
        PreparedInsert(deliveries.insert(), sqlite.dialect(), ["call_pk", "target"])


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.psycopg.dialect()])
def test_values_converted_once_bind_as_the_row_would(dialect: Any) -> None:
    """A batch converts its shared values once; the rows bind exactly as if each held them."""
    now = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
    insert = PreparedInsert(deliveries.insert(), dialect, _DELIVERY_COLUMNS)
    shared = _new_delivery(now)  # what a batch shares: timestamps, status, counters
    own = {"call_pk": 7, "target": "crm"}

    def plain(parameters: Any) -> dict[str, Any]:  # psycopg's Json wrapper has no equality
        named = parameters if isinstance(parameters, dict) else dict(enumerate(parameters))
        return {key: getattr(value, "obj", value) for key, value in named.items()}

    once = insert.parameters(own, insert.convert(shared))
    assert plain(once) == plain(insert.parameters({**own, **shared}))
