"""The CLI for people: status ids, legend, filters; serve or web on a taken port; send-example."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import update

from connector.cli import main
from connector.config.load import load_config
from connector.ledger.ledger import Ledger
from connector.ledger.tables import calls
from connector.payload import parse_report

ROOT = Path(__file__).parents[1]


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "storage": {"url": "sqlite:///ledger.db"},
                "targets": [{"name": "w", "type": "database", "url": "sqlite:///calls.db"}],
            }
        )
    )
    return path


def store(config_path: Path, example_v1: dict[str, Any], call_id: str, remote: str) -> None:
    document = {**example_v1, "call": {**example_v1["call"], "id": call_id, "from": remote}}
    ledger = Ledger.from_url(load_config(config_path).storage.url)
    ledger.migrate()
    assert ledger.store_call(parse_report(document), json.dumps(document).encode(), ["w"])


def status(config_path: Path, *args: str) -> list[str]:
    result = CliRunner().invoke(main, ["status", "--config", str(config_path), *args])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_status_shows_whole_ids_and_explains_its_cells(
    config_path: Path, example_v1: dict[str, Any]
) -> None:
    long_id = "pbx-" + "0123456789abcdef" * 4
    store(config_path, example_v1, long_id, "4921163553400")
    lines = status(config_path)
    assert any(long_id in line.split() for line in lines)
    legend = " ".join(lines[lines.index(next(x for x in lines if x.startswith("Cells:"))) :])
    assert "target=status[match](attempts: last error)" in legend and "dead" in legend
    again = status(config_path, "--call", long_id)
    assert any(long_id in line.split() for line in again)


def test_status_filters_by_number_in_any_format_and_by_time(
    config_path: Path, example_v1: dict[str, Any]
) -> None:
    store(config_path, example_v1, "call-duesseldorf", "4921163553400")
    store(config_path, example_v1, "call-berlin", "493012345678")
    ledger = Ledger.from_url(load_config(config_path).storage.url)
    with ledger.engine.begin() as conn:
        conn.execute(
            update(calls)
            .where(calls.c.call_id == "call-berlin")
            .values(received_at=datetime.now(UTC) - timedelta(days=3))
        )

    def ids(*args: str) -> set[str]:
        found = {line.split()[2] for line in status(config_path, *args) if "call-" in line}
        return found

    assert ids() == {"call-duesseldorf", "call-berlin"}
    assert ids("--number", "0211 63553400") == {"call-duesseldorf"}
    assert ids("--number", "+49 (30) 123456-78") == {"call-berlin"}
    assert ids("--since", "2d") == {"call-duesseldorf"}
    assert ids("--since", (datetime.now(UTC) - timedelta(days=4)).date().isoformat()) == {
        "call-duesseldorf",
        "call-berlin",
    }
    bad = CliRunner().invoke(main, ["status", "--config", str(config_path), "--since", "soon"])
    assert bad.exit_code == 2 and "30m, 2h, 7d" in bad.output


def run(config_path: Path, command: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`sipgate-crm COMMAND --config CONFIG_PATH ARGS...` in a process of its own."""
    argv = [sys.executable, "-m", "connector", command, "--config", str(config_path), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_a_second_serve_on_a_taken_port_says_so_and_starts_nothing(config_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        bind = f"127.0.0.1:{taken.getsockname()[1]}"
        done = run(config_path, "serve", "--bind", bind)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"Error: Cannot listen on {bind}: the port is taken (is the service already running?)"
    ]
    assert not (config_path.parent / "ledger.db").exists()  # nothing was started


def test_web_refuses_a_bind_on_the_metrics_port_or_a_taken_metrics_bind(
    config_path: Path,
) -> None:
    """``server.metrics_bind`` (``check-config`` refuses it on server.bind's port; ``--bind``
    can still name that port, and a taken metrics port is named like a taken bind)."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        metrics_bind = f"127.0.0.1:{taken.getsockname()[1]}"
        config = yaml.safe_load(config_path.read_text())
        config["server"] = {"bind": "127.0.0.1:0", "metrics_bind": metrics_bind}
        config_path.write_text(yaml.safe_dump(config))
        busy = run(config_path, "web")
    same = run(config_path, "web", "--bind", metrics_bind)  # free again now
    assert busy.returncode == 1
    assert busy.stderr.strip().splitlines() == [
        f"Error: Cannot listen on {metrics_bind}: the port is taken (is the service already "
        "running?)"
    ]
    assert same.returncode == 1
    assert same.stderr.strip().splitlines() == [
        f"Error: server.metrics_bind needs another port than {metrics_bind}."
    ]


def test_send_example_with_the_service_down_is_one_line(config_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    url = f"http://127.0.0.1:{port}/webhooks/sipgate"
    result = CliRunner().invoke(main, ["send-example", "--url", url])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: Could not reach {url}: nothing answers there (is the service running?)"
    ]


def test_make_clean_keeps_the_ledger() -> None:
    done = subprocess.run(
        ["make", "-n", "clean"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    removed = done.stdout.split()
    assert "rm" in removed and "data" not in removed and "data/" not in removed
