"""The database target: contract, normalised tables, idempotence."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select

from connector.adapters import Adapter, DeliveryJob, Journal, RetryableError
from connector.adapters.database import DatabaseAdapter
from connector.testing import AdapterContract, example_report


def make(tmp_path: Path, **options: object) -> DatabaseAdapter:
    loaded = DatabaseAdapter.config_schema().load(
        {"url": f"sqlite:///{tmp_path / 'calls.db'}", **options}
    )
    return DatabaseAdapter("warehouse", loaded)


class TestDatabaseContract(AdapterContract):
    type_name = "database"

    def make_adapter(self, tmp_path: Path) -> Adapter:
        return make(tmp_path)

    def make_unreachable_adapter(self, tmp_path: Path) -> Adapter:
        # A folder where the database file should be: SQLite cannot open it.
        options = DatabaseAdapter.config_schema().load({"url": f"sqlite:///{tmp_path}"})
        return DatabaseAdapter("warehouse", options)

    def count_logged_calls(self, adapter: Adapter, call_id: str) -> int:
        assert isinstance(adapter, DatabaseAdapter)
        return adapter.count_calls(call_id)


def test_writes_every_part_of_the_report_into_its_table(tmp_path: Path) -> None:
    adapter = make(tmp_path)
    report = example_report()
    adapter.write(DeliveryJob(report), Journal())
    t = adapter.tables
    with adapter.engine.connect() as conn:
        call = conn.execute(select(t["calls"])).one()
        assert call.headline == "Invoice inquiry and plan change"
        assert call.duration_ms == 82666
        assert call.direction == "IN"
        assert call.channel_name == "Support Channel"
        assert call.start_time.isoformat() == "2026-04-08T09:22:41.663000+00:00"
        roles = [r.role for r in conn.execute(select(t["participants"]).order_by("position"))]
        assert roles == ["caller", "callee", "user"]
        assert len(conn.execute(select(t["key_points"])).all()) == 3
        assert [r.topic for r in conn.execute(select(t["topics"]).order_by("position"))] == [
            "Invoice",
            "Additional package",
            "Plan change",
        ]
        assert len(conn.execute(select(t["action_items"])).all()) == 2
        assert len(conn.execute(select(t["small_talk"])).all()) == 1
        chunks = conn.execute(select(t["transcript_chunks"]).order_by("position")).all()
        assert [c.speaker for c in chunks] == ["CALLER", "CALLEE", "CALLER", "CALLEE"]


def test_repeating_a_call_replaces_rather_than_duplicates_children(tmp_path: Path) -> None:
    adapter = make(tmp_path)
    report = example_report()
    for _ in range(3):
        adapter.write(DeliveryJob(report), Journal())
    with adapter.engine.connect() as conn:
        assert len(conn.execute(select(adapter.tables["key_points"])).all()) == 3
        assert len(conn.execute(select(adapter.tables["participants"])).all()) == 3


def test_transcript_can_be_left_out(tmp_path: Path) -> None:
    adapter = make(tmp_path, store_transcript=False)
    adapter.write(DeliveryJob(example_report()), Journal())
    with adapter.engine.connect() as conn:
        assert conn.execute(select(adapter.tables["calls"].c.transcript)).scalar_one() is None
        assert conn.execute(select(adapter.tables["transcript_chunks"])).all() == []


def test_table_prefix_names_the_tables(tmp_path: Path) -> None:
    adapter = make(tmp_path, table_prefix="bi_")
    adapter.write(DeliveryJob(example_report()), Journal())
    names = set(inspect(adapter.engine).get_table_names())
    assert {"bi_calls", "bi_participants", "bi_transcript_chunks"} <= names
    assert not any(name.startswith("sipgate_") for name in names)


def test_unreachable_database_is_a_retryable_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "calls.db"
    options = DatabaseAdapter.config_schema().load({"url": f"sqlite:///{missing}"})
    adapter = DatabaseAdapter("warehouse", options, engine=create_engine(f"sqlite:///{missing}"))
    with pytest.raises(RetryableError):
        adapter.write(DeliveryJob(example_report()), Journal())
    assert not adapter.check()[0].ok
