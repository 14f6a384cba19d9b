"""Backups: a consistent copy while calls keep arriving, and a restored copy the service runs on."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import func, select

from connector.cli import main
from connector.config.sections import Config
from connector.ledger.backup import BackupError, backup_sqlite
from connector.ledger.ledger import Ledger
from connector.ledger.tables import calls, deliveries
from connector.payload import parse_report
from connector.services import Services


def _store(ledger: Ledger, document: dict[str, Any], n: int) -> None:
    call = json.loads(json.dumps(document))
    call["call"]["id"] = f"call-{n}"
    assert ledger.store_call(parse_report(call), json.dumps(call).encode(), ["a", "b"])


def _shape(url: str) -> tuple[int, int]:
    copy = Ledger.from_url(url)
    try:
        with copy.connection() as conn:
            n_calls = conn.execute(select(func.count()).select_from(calls)).scalar_one()
            n_deliveries = conn.execute(select(func.count()).select_from(deliveries)).scalar_one()
    finally:
        copy.close()
    return int(n_calls), int(n_deliveries)


def test_backups_taken_while_calls_arrive_are_consistent_snapshots(
    services: Services, example_v1: dict[str, Any], tmp_path: Path
) -> None:
    for n in range(20):
        _store(services.ledger, example_v1, n)
    stop = threading.Event()
    written: list[int] = []

    def keep_writing() -> None:
        n = 1000
        while not stop.is_set():
            _store(services.ledger, example_v1, n)
            written.append(n)
            n += 1

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        shapes = []
        for i in range(5):
            target = tmp_path / "backups" / f"ledger-{i}.db"
            target.parent.mkdir(exist_ok=True)
            assert backup_sqlite(services.config.storage.url, target) > 0
            assert not target.with_name(target.name + "-wal").exists()
            shapes.append(_shape(f"sqlite:///{target}"))
    finally:
        stop.set()
        writer.join()
    assert written  # the ledger was written to while the copies were taken
    for n_calls, n_deliveries in shapes:
        assert n_calls >= 20 and n_deliveries == 2 * n_calls  # never half a call
    assert shapes == sorted(shapes)


def test_a_restored_backup_is_a_working_ledger(
    services: Services,
    example_v1: dict[str, Any],
    tmp_path: Path,
    write_config: Callable[..., Config],
) -> None:
    _store(services.ledger, example_v1, 1)
    config = str(services.config.source)
    result = CliRunner().invoke(main, ["backup", "--config", config, str(tmp_path / "copy.db")])
    assert result.exit_code == 0, result.output
    assert "integrity ok" in result.output
    _store(services.ledger, example_v1, 2)  # after the backup: not in it

    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copy(tmp_path / "copy.db", restored / "connector.db")
    document = yaml.safe_load(Path(config).read_text())
    document["storage"]["url"] = f"sqlite:///{restored / 'connector.db'}"
    (restored / "config.yaml").write_text(yaml.safe_dump(document))
    runner = CliRunner()
    status = runner.invoke(main, ["status", "--json", "--config", str(restored / "config.yaml")])
    assert [json.loads(line)["call_id"] for line in status.output.splitlines()] == ["call-1"]
    assert (
        runner.invoke(main, ["migrate", "--config", str(restored / "config.yaml")]).exit_code == 0
    )
    replayed = runner.invoke(main, ["replay", "call-1", "--config", str(restored / "config.yaml")])
    assert replayed.exit_code == 0 and "2 deliveries due again" in replayed.output


def test_only_sqlite_ledgers_are_copied(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="pg_dump"):
        backup_sqlite("postgresql+psycopg://u:p@127.0.0.1/db", tmp_path / "x.db")
    with pytest.raises(BackupError, match="No ledger"):
        backup_sqlite(f"sqlite:///{tmp_path / 'missing.db'}", tmp_path / "x.db")


def test_the_backup_does_not_overwrite_the_ledger(services: Services) -> None:
    path = Path(services.config.storage.url.removeprefix("sqlite:///"))
    with pytest.raises(BackupError, match="must not be the ledger"):
        backup_sqlite(services.config.storage.url, path)
    assert _shape(services.config.storage.url) == (0, 0)
