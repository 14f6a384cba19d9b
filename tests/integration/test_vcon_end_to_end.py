"""vCon end to end: gunicorn and the worker take vCons into a database and a vcon target."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey

from connector.adapters.vcon.stores import file_name
from connector.payload import parse_body
from connector.testing import example_report
from connector.vcon.sign import sign_vcon
from connector.vcon.write import vcon_document
from tests.integration.harness import RunningService, raw_chunked_post

pytestmark = pytest.mark.integration
CALL_ID = "vcon-e2e-1"


def all_done(rows: list[dict[str, Any]]) -> bool:
    return bool(rows) and all(t["status"] == "done" for r in rows for t in r["targets"].values())


def send_example(service: RunningService, scenario: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "connector", "send-example", "--scenario", scenario],
        env=service.env,
        cwd=service.folder,
        capture_output=True,
        check=False,
    )
    answer = json.loads(done.stdout.decode().split(" ", 1)[1])
    return done.returncode, answer.get("status") or answer.get("error")


def test_a_signed_vcon_is_delivered_once_and_a_forged_one_refused(tmp_path: Path) -> None:
    key, forger = ECKey.generate_key("P-256"), ECKey.generate_key("P-256")
    targets = [
        {"name": "warehouse", "type": "database", "url": "sqlite:///data/calls.db"},
        {"name": "archive", "type": "vcon", "folder": "data/vcons"},
    ]
    sent = vcon_document(example_report(CALL_ID))
    body = json.dumps(sign_vcon(sent, key)).encode()
    with RunningService(
        tmp_path, server={"vcon_keys": [dict(key.as_dict(private=False))]}, targets=targets
    ) as service:
        service.start_web()
        service.start_worker()
        status, answer = raw_chunked_post(service.port, "/webhooks/sipgate", body)
        assert (status, json.loads(answer)["status"]) == (200, "accepted"), answer
        status, answer = raw_chunked_post(service.port, "/webhooks/sipgate", body)
        assert (status, json.loads(answer)["status"]) == (200, "duplicate")
        forged = json.dumps(sign_vcon(vcon_document(example_report("vcon-e2e-2")), forger))
        status, answer = raw_chunked_post(service.port, "/webhooks/sipgate", forged.encode())
        assert (status, json.loads(answer)["error"]) == (422, "invalid_signature")
        # send-example: the unsigned vCon is accepted, the one signed with a throw-away key not.
        assert send_example(service, "vcon") == (0, "accepted")
        assert send_example(service, "vcon-signed") == (1, "invalid_signature")
        rows = service.wait_for(lambda rows: len(rows) == 2 and all_done(rows))
    assert sorted(r["call_id"] for r in rows) == sorted(
        [CALL_ID, f"{example_report().call_id}-vcon"]
    )
    with sqlite3.connect(tmp_path / "data" / "calls.db") as conn:
        version = conn.execute(
            "select payload_version from sipgate_calls where call_id = ?", (CALL_ID,)
        ).fetchall()
    assert version == [("vcon",)]
    archived = (tmp_path / "data" / "vcons" / file_name(CALL_ID)).read_bytes()
    assert parse_body(archived) == parse_body(json.dumps(sent).encode())
    files = sorted(p.name for p in (tmp_path / "data" / "vcons").iterdir())
    assert files == sorted(file_name(r["call_id"]) for r in rows)  # nothing of the forged one
