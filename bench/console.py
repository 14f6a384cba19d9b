"""Console benchmark: server time of the calls list and of searches over a ledger of 100,000 calls.

Builds a migrated, analysed ledger (SQLite in a temporary folder; PostgreSQL too when
``SIPGATE_TEST_POSTGRES_URL`` is set, in a schema of its own) with `--calls` calls and one
delivery each, then times the console's pages in-process through Flask's test client, logged in
as an operator: the first page of the calls list, a page deep in the keyset pagination, a search
by a number typed in a national format, a search by call id, and a state filter. Each figure is
the median of `--repeat` requests, printed in milliseconds and as a ratio to ``/healthz`` (a request
that queries nothing) measured in the same run. Goal: ≤ 300 ms each.

Run: ``python bench/console.py`` (``--calls 100000 --repeat 15``).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from werkzeug.security import generate_password_hash

from connector.config.load import parse_config
from connector.ledger.ledger import Ledger
from connector.ledger.tables import DEAD, DONE, calls, deliveries
from connector.web.app import create_app

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = (ROOT / "connector" / "examples" / "example-v1.json").read_bytes()
PASSWORD = "bench-password"
TARGET_NUMBER = 4921163500000  # the number searched; calls from it are spread over the ledger


def fill(ledger: Ledger, count: int, batch: int = 5000) -> str:
    """`count` calls with one delivery each; returns a call id in the middle."""
    start = datetime.now(UTC) - timedelta(days=90)
    middle = ""
    with ledger.engine.begin() as conn:
        for offset in range(0, count, batch):
            rows = []
            for n in range(offset, min(offset + batch, count)):
                call_id = f"pbx-bench-{n:07d}-{uuid.uuid4().hex[:8]}"
                if n == count // 2:
                    middle = call_id
                at = start + timedelta(seconds=n * 77)
                number = TARGET_NUMBER if n % 10_000 == 0 else 4921100000000 + n
                rows.append(
                    {
                        "dedupe_key": call_id,
                        "call_id": call_id,
                        "payload_version": "1",
                        "received_at": at,
                        "raw_body": EXAMPLE,
                        "start_time": at,
                        "direction": "IN" if n % 3 else "OUT",
                        "from_number": str(number),
                        "to_number": "4921163553401",
                        "duration_ms": 60_000 + n % 50_000,
                        "channel_name": "Sales" if n % 2 else "Support",
                        "user_names": "Max Mustermann",
                    }
                )
            ids = [r[0] for r in conn.execute(calls.insert().returning(calls.c.id), rows)]
            conn.execute(
                deliveries.insert(),
                [
                    {
                        "call_pk": pk,
                        "target": "warehouse",
                        "status": DEAD if pk % 97 == 0 else DONE,
                        "attempts": 1,
                        "next_attempt_at": start,
                        "refs": {},
                        "retry_since": start,
                        "created_at": start,
                        "updated_at": start,
                    }
                    for pk in ids
                ],
            )
    return middle


def client_for(storage_url: str, folder: Path) -> Any:
    config = parse_config(
        {
            "storage": {"url": storage_url},
            "queue": {"url": "memory://"},
            "targets": [
                {"name": "warehouse", "type": "database", "url": f"sqlite:///{folder}/calls.db"}
            ],
            "console": {
                "enabled": True,
                "secret_key": "b" * 40,
                "users": [
                    {
                        "name": "bench",
                        "role": "operator",
                        "password_hash": generate_password_hash(PASSWORD),
                    }
                ],
            },
        },
        base=folder,
    )
    client = create_app(config).test_client()
    page = client.get("/console/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    form = {"user": "bench", "password": PASSWORD, "csrf_token": token.group(1)}
    assert client.post("/console/login", data=form).status_code == 302
    return client


def median_ms(request: Callable[[], Any], repeat: int) -> float:
    request()  # warm caches and connections
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        response = request()
        times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.status_code
    return statistics.median(times)


def measure(name: str, storage_url: str, folder: Path, count: int, repeat: int) -> None:
    ledger = Ledger.from_url(storage_url)
    ledger.migrate()
    began = time.perf_counter()
    middle = fill(ledger, count)
    with ledger.engine.begin() as conn:
        # A long-lived ledger has planner statistics (autovacuum, SQLite's optimize); a table
        # filled a second ago has none, and PostgreSQL would then scan the primary key backwards.
        conn.execute(text("ANALYZE"))
    print(f"\n{name}: {count} calls stored in {time.perf_counter() - began:.0f}s")
    client = client_for(storage_url, folder)
    with ledger.connection() as conn:
        deep_pk = conn.execute(
            text("SELECT id FROM calls WHERE call_id = :c"), {"c": middle}
        ).scalar_one()
    cases: dict[str, Callable[[], Any]] = {
        "/healthz (baseline)": lambda: client.get("/healthz"),
        "calls list, first page": lambda: client.get("/console/calls"),
        "calls list, page at 50%": lambda: client.get(f"/console/calls?before={deep_pk}"),
        "search a number (0211 635-00000)": lambda: client.get(
            "/console/calls", query_string={"q": "0211 635-00000"}
        ),
        "search a call id": lambda: client.get("/console/calls", query_string={"q": middle}),
        "filter state=dead": lambda: client.get("/console/calls?status=dead"),
        "filter direction=OUT, channel": lambda: client.get(
            "/console/calls?direction=OUT&channel=Support"
        ),
        "overview": lambda: client.get("/console/"),
    }
    baseline = None
    for label, request in cases.items():
        ms = median_ms(request, repeat)
        baseline = baseline or ms
        verdict = "" if label.endswith("(baseline)") else ("  ok" if ms <= 300 else "  > 300 ms")
        print(f"  {label:<36} {ms:8.1f} ms  {ms / baseline:6.1f}x baseline{verdict}")
    page = client.get("/console/calls", query_string={"q": "0211 635-00000"})
    found = page.get_data(as_text=True).count('href="/console/calls/pbx-bench-')
    print(f"  (the number search found {found} calls; {count // 10_000 or 1} expected)")
    ledger.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        measure("SQLite", f"sqlite:///{folder}/connector.db", folder, args.calls, args.repeat)
        postgres = os.environ.get("SIPGATE_TEST_POSTGRES_URL")
        if postgres:
            database = f"bench_console_{uuid.uuid4().hex[:8]}"
            admin = create_engine(postgres, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{database}"'))
            url = postgres.rsplit("/", 1)[0] + "/" + database
            try:
                measure("PostgreSQL", url, folder, args.calls, args.repeat)
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE "{database}" WITH (FORCE)'))
                admin.dispose()
        else:
            print("\nPostgreSQL: skipped (set SIPGATE_TEST_POSTGRES_URL to measure it)")


if __name__ == "__main__":
    main()
