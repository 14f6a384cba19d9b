"""dry-run: --offline reaches no CRM for any shipped adapter; a failing target is one line."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from connector.cli import main

ROOT = Path(__file__).parents[1]
PAYLOAD = str(ROOT / "tests/fixtures/example-v1.json")


class CountingListener:
    """A loopback port that accepts connections, counts them and closes them at once."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()
        self.thread.join(timeout=5)


@pytest.fixture
def listener() -> Iterator[CountingListener]:
    server = CountingListener()
    try:
        yield server
    finally:
        server.close()


def crm_targets(port: int) -> list[dict[str, Any]]:
    owners = {"users": {"1234567w0": "erika.beispiel@example.com"}, "fallback": "ops@example.com"}
    return [
        {
            "name": "hs",
            "type": "hubspot",
            "access_token": "pat-test",
            "base_url": f"http://127.0.0.1:{port}",
            "owners": owners,
        },
        {
            "name": "sf",
            "type": "salesforce",
            "instance_url": f"https://127.0.0.1:{port}",
            "auth": {"client_id": "id", "client_secret": "secret", "domain": "acme.my"},
            "owners": owners,
        },
        {"name": "w", "type": "database", "url": "sqlite:///c.db"},
    ]


def config_file(tmp_path: Path, targets: list[dict[str, Any]]) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"storage": {"url": "sqlite:///l.db"}, "targets": targets}))
    return str(path)


def test_offline_contacts_no_crm_for_any_shipped_adapter(
    tmp_path: Path, listener: CountingListener
) -> None:
    path = config_file(tmp_path, crm_targets(listener.port))
    result = CliRunner().invoke(
        main, ["dry-run", "--config", path, "--offline", "--assume-match", "contact:17", PAYLOAD]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert listener.accepted == 0
    assert set(out["targets"]) == {"hs", "sf", "w"}
    for name in ("hs", "sf"):
        job = out["targets"][name]["job"]
        assert job["records"] == [{"type": "contact", "id": "17", "name": ""}]
        # The e-mail owner is shown unresolved; no adapter ever parsed it as an id.
        assert job["owner"] == "(owner with e-mail erika.beispiel@example.com)"
    assert out["targets"]["w"]["job"]["fields"]["title"] == "Invoice inquiry and plan change"
    assert not (tmp_path / "c.db").exists()


def test_an_unreachable_crm_is_one_line_naming_the_target(tmp_path: Path) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    path = config_file(tmp_path, crm_targets(port)[:1])
    result = CliRunner().invoke(main, ["dry-run", "--config", path, PAYLOAD])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: target 'hs': "), result.output
    assert "Usage:" not in result.output


def test_a_bad_assumption_is_a_usage_error_before_any_target_runs(tmp_path: Path) -> None:
    path = config_file(tmp_path, crm_targets(9)[2:])
    result = CliRunner().invoke(
        main, ["dry-run", "--config", path, "--offline", "--assume-match", "contact", PAYLOAD]
    )
    assert result.exit_code == 2 and "--assume-match takes TYPE:ID[:NAME]" in result.output
