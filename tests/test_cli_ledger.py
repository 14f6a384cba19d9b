"""The operator commands `status` and `replay`: the ledger alone, no CRM secret needed."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from connector.cli import main
from connector.ledger.ledger import Ledger
from connector.ledger.tables import DEAD, PENDING, RETRYING
from connector.payload import parse_report


@pytest.fixture
def config_without_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A configuration whose webhook secret and target URL come from variables not set here."""
    for name in ("SIPGATE_WEBHOOK_SECRET", "WAREHOUSE_URL"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "config.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "server": {"secret": "${SIPGATE_WEBHOOK_SECRET}"},
                "storage": {"url": "sqlite:///data/connector.db"},
                "targets": [
                    {"name": "warehouse", "type": "database", "url": "${WAREHOUSE_URL}"},
                    {"name": "archive", "type": "database", "url": "${WAREHOUSE_URL}"},
                ],
            }
        )
    )
    return path


def run(config: Path, *args: str) -> Any:
    return CliRunner().invoke(main, [*args, "--config", str(config)])


def test_the_service_itself_needs_the_secrets(config_without_secrets: Path) -> None:
    result = run(config_without_secrets, "check-config")
    assert result.exit_code == 2 and "SIPGATE_WEBHOOK_SECRET is not set" in result.output


def test_status_and_replay_work_without_the_secrets(
    config_without_secrets: Path, example_v1: dict[str, Any]
) -> None:
    assert run(config_without_secrets, "status").output.strip() == "No calls yet."
    ledger = Ledger.from_url(f"sqlite:///{config_without_secrets.parent / 'data/connector.db'}")
    report = parse_report(example_v1)
    body = json.dumps(example_v1).encode()
    warehouse, archive = ledger.store_call(report, body, ["warehouse", "archive"]) or []
    for delivery, finish in (
        (warehouse, lambda c: ledger.fail(c, "token revoked")),
        (archive, lambda c: ledger.retry_later(c, "down", ledger.clock() + timedelta(hours=1))),
    ):
        claim = ledger.claim(delivery, timedelta(seconds=15))
        assert claim is not None
        finish(claim)

    status = run(config_without_secrets, "status")
    assert status.exit_code == 0 and report.call_id in status.output
    assert f"{DEAD}=1" in status.output and f"{RETRYING}=1" in status.output

    replayed = run(config_without_secrets, "replay", "--failed")
    assert (replayed.exit_code, replayed.output.strip()) == (0, "1 deliveries due again.")
    assert ledger.counts() == {DEAD: 1, PENDING: 1}
    replayed = run(config_without_secrets, "replay", "--dead")
    assert replayed.exit_code == 0 and ledger.counts() == {PENDING: 2}
    assert run(config_without_secrets, "replay", "--dead").exit_code == 1  # nothing left
    replayed = run(config_without_secrets, "replay", report.call_id)
    assert (replayed.exit_code, replayed.output.strip()) == (0, "2 deliveries due again.")
    ledger.close()


def test_replay_of_an_unknown_call_id_is_one_line(config_without_secrets: Path) -> None:
    result = run(config_without_secrets, "replay", "pbx-no-such-call")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: Unknown call id 'pbx-no-such-call' (sipgate-crm status lists the call ids)."
    ]


def test_replay_needs_an_id_or_a_status(config_without_secrets: Path) -> None:
    assert run(config_without_secrets, "replay").exit_code == 2
    assert run(config_without_secrets, "replay", "x", "--dead").exit_code == 2
