"""Recovery benchmark: crash recovery time and the lateness of retries, on the real worker.

In one run, with the SQLite ledger and queue and ``sipgate-crm worker`` processes:

1. **Retries on time**: several hundred deliveries (new calls arriving at `--rate` per second)
   whose first attempt fails (retryable), with ``retry_base_seconds: 1``; each retry records
   when it started, and its lateness is that time minus the due time the ledger gave it.
   Prints p50/p99/max lateness, and p99 as a ratio of the goal ``poll_interval_seconds + 1 s``.
2. **Crash recovery**: a backlog of slow deliveries (each write takes `--write-seconds`); the
   worker is killed with SIGKILL while it holds several, and restarted at once. Prints the
   seconds from the restart until every delivery it held is settled, as a ratio of
   ``lease_seconds`` (the bound of the design) and of the 30 s goal.

Run: ``python bench/recovery.py`` (``--retries 300 --lease 15 --poll 1``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connector.ledger.ledger import Ledger  # noqa: E402
from connector.payload import parse_report  # noqa: E402

EXAMPLE = json.loads((ROOT / "connector" / "examples" / "example-v1.json").read_text())
SETTLED = ("done", "skipped", "dead", "failed-retrying")


class Worker:
    """A folder with a configuration, its ledger, and `sipgate-crm worker` processes on it."""

    def __init__(self, folder: Path, queue: dict[str, Any], target: dict[str, Any]) -> None:
        self.folder = folder
        folder.mkdir(parents=True)
        self.config = folder / "config.yaml"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "storage": {"url": "sqlite:///data/connector.db"},
                    "queue": {"url": "sqlite:///data/queue.db", **queue},
                    "log_level": "WARNING",
                    "targets": [
                        {
                            "name": "warehouse",
                            "type": "tests.support.adapters:PacedDatabaseAdapter",
                            "url": "sqlite:///data/calls.db",
                            **target,
                        }
                    ],
                }
            )
        )
        self.ledger = Ledger.from_url(f"sqlite:///{folder / 'data' / 'connector.db'}")
        self.ledger.migrate()
        self.process: subprocess.Popen[bytes] | None = None

    def accept(self, count: int, rate: float | None = None) -> None:
        """Store `count` calls, one delivery each, as the web side would (`rate` per second)."""
        start = time.monotonic()
        for n in range(count):
            if rate:
                time.sleep(max(0.0, start + n / rate - time.monotonic()))
            document = {**EXAMPLE, "call": {**EXAMPLE["call"], "id": f"bench-{n}"}}
            body = json.dumps(document).encode()
            self.ledger.store_call(parse_report(document), body, ["warehouse"])

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "SIPGATE_CRM_CONFIG": str(self.config)}
        log = (self.folder / "worker.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "connector", "worker"],
            env=env,
            cwd=self.folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)

    def rows(self) -> list[sqlite3.Row]:
        with sqlite3.connect(self.folder / "data" / "connector.db", timeout=30) as conn:
            conn.row_factory = sqlite3.Row
            return conn.execute(
                "select id, status, attempts, next_attempt_at, refs from deliveries"
            ).fetchall()

    def wait(self, done: Any, what: str, deadline: float = 600) -> list[sqlite3.Row]:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            rows = self.rows()
            if done(rows):
                return rows
            time.sleep(0.05)
        raise SystemExit(f"gave up waiting for {what}; see {self.folder / 'worker.log'}")


def _epoch(stored: str) -> float:
    from datetime import UTC, datetime

    return datetime.fromisoformat(stored).replace(tzinfo=UTC).timestamp()


def retry_lateness(folder: Path, count: int, rate: float, poll: float, lease: int) -> list[float]:
    worker = Worker(
        folder,
        {
            "workers": 4,
            "retry_base_seconds": 1,
            "retry_max_seconds": 1,
            "lease_seconds": lease,
            "poll_interval_seconds": poll,
        },
        {"write_seconds": 0, "fail_first": True},
    )
    worker.start()
    try:
        worker.accept(count, rate)
        rows = worker.wait(
            lambda rows: all(r["status"] == "done" for r in rows), f"{count} retried deliveries"
        )
    finally:
        worker.stop()
    lateness = []
    for row in rows:
        refs = json.loads(row["refs"])
        if row["attempts"] == 2:  # a third attempt (a locked target file) has another due time
            lateness.append(refs["retry_started"] - _epoch(row["next_attempt_at"]))
    return lateness


def crash_recovery(folder: Path, count: int, write_seconds: float, lease: int) -> tuple[float, int]:
    worker = Worker(
        folder,
        {"workers": 4, "lease_seconds": lease, "poll_interval_seconds": 1},
        {"write_seconds": write_seconds},
    )
    worker.accept(count)
    worker.start()
    try:
        worker.wait(
            lambda rows: (
                sum(r["status"] == "processing" for r in rows) >= 4
                and any(r["status"] == "done" for r in rows)
            ),
            "a worker busy with deliveries",
        )
        worker.kill()
        held = {r["id"] for r in worker.rows() if r["status"] == "processing"}
        restarted = time.monotonic()
        worker.start()
        worker.wait(
            lambda rows: all(r["status"] in SETTLED for r in rows if r["id"] in held),
            "the deliveries the killed worker held",
        )
        return time.monotonic() - restarted, len(held)
    finally:
        worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retries", type=int, default=300, help="deliveries failing once")
    parser.add_argument("--rate", type=float, default=10.0, help="of those, new calls per second")
    parser.add_argument("--backlog", type=int, default=40, help="slow deliveries for the crash")
    parser.add_argument("--write-seconds", type=float, default=2.0)
    parser.add_argument("--lease", type=int, default=15, help="queue.lease_seconds")
    parser.add_argument("--poll", type=float, default=1.0, help="queue.poll_interval_seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sipgate-crm-recovery-") as tmp:
        lateness = retry_lateness(
            Path(tmp) / "retries", args.retries, args.rate, args.poll, args.lease
        )
        recovery, held = crash_recovery(
            Path(tmp) / "crash", args.backlog, args.write_seconds, args.lease
        )
    p99 = statistics.quantiles(lateness, n=100)[98]
    goal = args.poll + 1
    print(
        f"retries: {len(lateness)} measured; lateness against their due time "
        f"p50 {statistics.median(lateness):.3f}s, p99 {p99:.3f}s, max {max(lateness):.3f}s; "
        f"p99/(poll_interval + 1 s) = {p99 / goal:.2f}"
    )
    print(
        f"crash recovery: {held} deliveries held by the killed worker settled {recovery:.1f}s "
        f"after the restart; /lease_seconds = {recovery / args.lease:.2f}, /30 s = "
        f"{recovery / 30:.2f}"
    )


if __name__ == "__main__":
    main()
