"""Unattended delivery on the real service: kill -9 and restarts, retries on time, lost storage."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.harness import RunningService, raw_chunked_post

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).parents[1] / "fixtures"


def paced_target(**options: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": "warehouse",
            "type": "tests.support.adapters:PacedDatabaseAdapter",
            "url": "sqlite:///data/calls.db",
            **options,
        }
    ]


def send_calls(running: RunningService, count: int) -> list[str]:
    document = json.loads((FIXTURES / "example-v1.json").read_text())
    ids = []
    for n in range(count):
        document["call"]["id"] = f"call-{n}"
        body = json.dumps(document).encode()
        assert raw_chunked_post(running.port, "/webhooks/sipgate", body)[0] == 200
        ids.append(document["call"]["id"])
    return ids


def statuses(rows: list[dict[str, Any]]) -> list[str]:
    return [t["status"] for r in rows for t in r["targets"].values()]


def settled(count: int) -> Any:
    return lambda rows: len(rows) == count and all(s == "done" for s in statuses(rows))


def test_in_flight_deliveries_settle_after_kill_9_and_a_restart(tmp_path: Path) -> None:
    # Writes slow enough that a status command on a loaded machine sees them in progress.
    with RunningService(tmp_path, targets=paced_target(write_seconds=20.0)) as running:
        running.start_web()
        send_calls(running, 3)
        running.start_worker()
        running.wait_for(lambda rows: "processing" in statuses(rows))
        running.kill_worker()
        held = {
            r["call_id"]
            for r in running.status()
            if r["targets"]["warehouse"]["status"] == "processing"
        }
        assert held  # leased by a dead worker
        running.start_worker()
        rows = running.wait_for(settled(3), timeout=180)
        # The deliveries it held were tried again (others may have retried a locked target file).
        assert all(r["targets"]["warehouse"]["attempts"] >= 2 for r in rows if r["call_id"] in held)
        with sqlite3.connect(tmp_path / "data" / "calls.db") as conn:
            assert conn.execute("select count(*) from sipgate_calls").fetchone() == (3,)


def test_retries_do_not_wait_for_lost_queue_messages_after_a_restart(tmp_path: Path) -> None:
    # A lost message used to cost requeue_after_seconds: 300 here; wait_for gives up after 60.
    with RunningService(
        tmp_path,
        queue={"retry_base_seconds": 4, "retry_max_seconds": 4, "requeue_after_seconds": 300},
        targets=paced_target(write_seconds=0, fail_first=True),
    ) as running:
        running.start_web()
        send_calls(running, 5)
        running.start_worker()
        running.wait_for(
            lambda rows: (
                len(rows) == 5
                and all("failed_once" in r["targets"]["warehouse"]["refs"] for r in rows)
            )
        )
        running.kill_worker()
        (tmp_path / "data" / "queue.db").unlink()  # and the queue is gone too
        running.start_worker()
        rows = running.wait_for(settled(5))
        for row in rows:
            target = row["targets"]["warehouse"]
            assert target["attempts"] >= 2 and "retry_started" in target["refs"]


def test_a_deleted_ledger_file_is_answered_503(tmp_path: Path) -> None:
    body = (FIXTURES / "example-v1.json").read_bytes()
    with RunningService(tmp_path) as running:
        running.start_web()
        assert raw_chunked_post(running.port, "/webhooks/sipgate", body)[0] == 200
        (tmp_path / "data" / "connector.db").unlink()
        document = json.loads(body)
        for n in range(6):  # every web worker process, every pooled connection
            document["call"]["id"] = f"after-delete-{n}"
            status, _ = raw_chunked_post(
                running.port, "/webhooks/sipgate", json.dumps(document).encode()
            )
            assert status == 503
        ready = requests.get(f"{running.url}/readyz", timeout=30)
        assert ready.status_code == 503 and ready.json()["storage"].startswith("unavailable")


def read_only_command(data: Path, command: list[str]) -> list[str]:
    """`command` run where `data` is read-only: by permissions, or for root (whom permissions do
    not stop) through a read-only bind mount in a mount namespace of its own."""
    data.chmod(0o555)
    if os.geteuid() != 0:
        return command
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("running as root without mount namespaces: cannot make a folder read-only")
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    namespace = ["unshare", "--mount", "--propagation", "private"]
    return [*namespace, "sh", "-c", script, str(data), *command]


def test_a_read_only_data_folder_is_one_line_at_start_up(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    running = RunningService(tmp_path)
    for command in ("web", "worker"):
        result = subprocess.run(
            read_only_command(data, [sys.executable, "-m", "connector", command]),
            env=running.env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 1, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("Error: Cannot open the ledger")
        assert f"Is the folder {data} writable?" in lines[0]


def test_a_full_disk_is_answered_503_and_nothing_is_stored(
    tmp_path: Path, write_config: Any, example_v1: dict[str, Any]
) -> None:
    from sqlalchemy import event

    from connector.ledger.ledger import Ledger
    from connector.web.app import create_app

    config = write_config()
    ledger = Ledger.from_url(config.storage.url)
    ledger.migrate()
    ledger.close()

    def no_room_to_grow(dbapi: Any, _record: Any) -> None:
        # SQLITE_FULL, the error a full disk gives: the file may not grow by a single page.
        pages = dbapi.execute("PRAGMA page_count").fetchone()[0]
        dbapi.execute(f"PRAGMA max_page_count={pages}")

    event.listen(ledger.engine, "connect", no_room_to_grow)
    client = create_app(config, ledger).test_client()
    example_v1["assist"]["transcription"]["content"] = "words " * 20_000  # needs new pages
    response = client.post("/webhooks/sipgate", json=example_v1)
    assert response.status_code == 503
    assert response.json["error"] == "service_unavailable"
    assert ledger.counts() == {} and ledger.recent_calls() == []
    ledger.close()
