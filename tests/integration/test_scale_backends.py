"""The same code on PostgreSQL (ledger, database target) and Redis (queue).

These run where a PostgreSQL and a Redis server are available: `.ci/run` starts both and sets
SIPGATE_TEST_POSTGRES_URL (a role allowed to create databases) and SIPGATE_TEST_REDIS_URL.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from connector.adapters import Adapter
from connector.adapters.database import DatabaseAdapter
from connector.delivery.queue import DeliveryQueue, make_huey
from connector.ledger.ledger import Ledger
from connector.payload import parse_report
from tests.integration.harness import RunningService, raw_chunked_post
from tests.support.postgres import PostgresTargetContract, fresh_database, needs_postgres

pytestmark = pytest.mark.integration
REDIS = os.environ.get("SIPGATE_TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(not REDIS, reason="SIPGATE_TEST_REDIS_URL not set")
FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from fresh_database()


@pytest.fixture
def redis_url() -> str:
    assert REDIS
    import redis

    redis.Redis.from_url(REDIS).flushdb()
    return REDIS


@needs_postgres
def test_ledger_on_postgresql(pg_url: str) -> None:
    ledger = Ledger.from_url(pg_url)
    ledger.migrate()
    ledger.migrate()  # a second start finds the schema current
    document = json.loads((FIXTURES / "example-v1.json").read_text())
    report = parse_report(document)
    ids = ledger.store_call(report, json.dumps(document).encode(), ["a", "b"])
    assert ids is not None and len(ids) == 2
    assert ledger.store_call(report, b"{}", ["a", "b"]) is None
    claim = ledger.claim(ids[0], timedelta(seconds=60))
    assert claim is not None and claim.call_id == report.call_id
    assert ledger.claim(ids[0], timedelta(seconds=60)) is None
    ledger.record_ref(claim, "call", "123")
    assert ledger.complete(claim, {"call": "123"})
    [summary] = ledger.recent_calls()
    assert {d.target: d.status for d in summary.deliveries} == {"a": "done", "b": "pending"}
    assert summary.deliveries[0].refs == {"call": "123"}
    ledger.close()


@needs_postgres
def test_a_webhook_write_survives_the_server_dropping_the_writers_connection(
    pg_url: str,
) -> None:
    """The webhook's writer holds one connection; when PostgreSQL ends it (a restart, a
    failover, an idle timeout), the next call is stored on a fresh one, not answered 503."""
    ledger = Ledger.from_url(pg_url)
    ledger.migrate()
    document = json.loads((FIXTURES / "example-v1.json").read_text())
    first = parse_report(document)
    assert ledger.store_call(first, b"{}", ["a"]) is not None
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        dropped = conn.execute(
            text(
                "select pg_terminate_backend(pid) from pg_stat_activity"
                " where datname = current_database() and pid <> pg_backend_pid()"
            )
        ).all()
    admin.dispose()
    assert dropped and all(ok for (ok,) in dropped)
    second = parse_report(
        {**document, "call": {**document["call"], "id": "second-call-after-a-drop"}}
    )
    assert ledger.store_call(second, b"{}", ["a"]) is not None
    assert ledger.store_call(first, b"{}", ["a"]) is None  # still exactly once
    assert {s.call_id for s in ledger.recent_calls()} == {first.call_id, second.call_id}
    ledger.close()


@needs_postgres
class TestDatabaseTargetOnPostgres(PostgresTargetContract):
    type_name = "database"

    def build(self, url: str) -> Adapter:
        return DatabaseAdapter("warehouse", DatabaseAdapter.config_schema().load({"url": url}))

    def count_logged_calls(self, adapter: Adapter, call_id: str) -> int:
        assert isinstance(adapter, DatabaseAdapter)
        return adapter.count_calls(call_id)


@needs_redis
def test_redis_queue_round_trip(redis_url: str) -> None:
    queue = DeliveryQueue(make_huey(redis_url))
    queue.ping()
    queue.enqueue(41)
    queue.enqueue(42)
    assert queue.pending() == 2


@needs_postgres
@needs_redis
def test_end_to_end_on_postgresql_and_redis(tmp_path: Path, pg_url: str, redis_url: str) -> None:
    marker = tmp_path / "hung-once"
    running = RunningService(
        tmp_path,
        storage={"url": pg_url},
        queue={"url": redis_url},
        targets=[
            {
                "name": "warehouse",
                "type": "tests.support.adapters:SlowDatabaseAdapter",
                "url": pg_url,
                "hang_marker": str(marker),
                "hang_seconds": 120,
            }
        ],
    )
    running.start_web()
    running.start_worker()
    try:
        body = (FIXTURES / "example-v1.json").read_bytes()
        assert raw_chunked_post(running.port, "/webhooks/sipgate", body)[0] == 200
        status, answer = raw_chunked_post(running.port, "/webhooks/sipgate", body)
        assert (status, json.loads(answer)["status"]) == (200, "duplicate")
        running.wait_for(lambda rows: marker.exists())
        running.kill_worker()
        running.start_worker()
        rows = running.wait_for(
            lambda rows: rows and rows[0]["targets"]["warehouse"]["status"] == "done"
        )
        assert len(rows) == 1
        engine = create_engine(pg_url)
        with engine.connect() as conn:
            assert conn.execute(text("select count(*) from sipgate_calls")).scalar_one() == 1
        engine.dispose()
    finally:
        running.stop()


@needs_postgres
def test_several_processes_can_migrate_a_fresh_database_at_once(
    pg_url: str, tmp_path: Path
) -> None:
    import subprocess
    import sys

    import yaml

    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump({"storage": {"url": pg_url}, "targets": [{"name": "w", "type": "database"}]})
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "connector", "migrate", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs


def _libpq(url: str) -> str:
    """`url` as pg_dump and pg_restore take it: without SQLAlchemy's ``+psycopg``."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@needs_postgres
@pytest.mark.skipif(not shutil.which("pg_dump"), reason="pg_dump not installed")
def test_a_pg_dump_of_the_ledger_restores_to_a_working_ledger(pg_url: str, tmp_path: Path) -> None:
    """README "Backups and upgrades": pg_dump while the service runs, pg_restore, carry on."""
    ledger = Ledger.from_url(pg_url)
    ledger.migrate()
    document = json.loads((FIXTURES / "example-v1.json").read_text())
    first = parse_report(document)
    assert ledger.store_call(first, json.dumps(document).encode(), ["a", "b"])
    dump = tmp_path / "ledger.dump"
    subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", _libpq(pg_url)], check=True)
    ledger.close()

    for restored_url in fresh_database():
        subprocess.run(
            ["pg_restore", "--clean", "--if-exists", f"--dbname={_libpq(restored_url)}", str(dump)],
            check=True,
        )
        restored = Ledger.from_url(restored_url)
        try:
            restored.migrate()  # current already
            assert [c.call_id for c in restored.recent_calls()] == [first.call_id]
            assert restored.store_call(first, b"{}", ["a", "b"]) is None  # still a duplicate
            document["call"]["id"] = "pbx-after-restore"
            later = restored.store_call(
                parse_report(document), json.dumps(document).encode(), ["a", "b"]
            )
            assert later is not None and len(later) == 2  # the id sequences came along
        finally:
            restored.close()
