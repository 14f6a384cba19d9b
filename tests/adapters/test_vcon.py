"""The vcon target: contract (folder and table), atomic files, round trip, erasure."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from marshmallow import ValidationError

from connector.adapters import Adapter, DeliveryJob, Journal, RetryableError, adapter_class
from connector.adapters.vcon import VconAdapter
from connector.adapters.vcon.stores import TableStore, file_name
from connector.config.load import parse_config
from connector.delivery.retention import retaining_targets
from connector.payload import parse_body
from connector.problems import ConfigError
from connector.testing import AdapterContract, example_report
from tests.support.postgres import PostgresTargetContract, needs_postgres


def folder_target(folder: Path, **options: object) -> VconAdapter:
    loaded = VconAdapter.config_schema().load({"folder": str(folder), **options})
    return VconAdapter("archive", loaded)


def table_target(tmp_path: Path, **options: object) -> VconAdapter:
    loaded = VconAdapter.config_schema().load({"url": f"sqlite:///{tmp_path / 'v.db'}", **options})
    return VconAdapter("archive", loaded)


class TestVconFolderContract(AdapterContract):
    type_name = "vcon"

    def make_adapter(self, tmp_path: Path) -> Adapter:
        return folder_target(tmp_path / "vcons")

    def make_unreachable_adapter(self, tmp_path: Path) -> Adapter:
        blocker = tmp_path / "a-file"
        blocker.write_text("not a folder")
        return folder_target(blocker / "vcons")

    def count_logged_calls(self, adapter: Adapter, call_id: str) -> int:
        assert isinstance(adapter, VconAdapter)
        return adapter.count_calls(call_id)


class TestVconTableContract(TestVconFolderContract):
    def make_adapter(self, tmp_path: Path) -> Adapter:
        return table_target(tmp_path)

    def make_unreachable_adapter(self, tmp_path: Path) -> Adapter:
        # A folder where the database file should be: SQLite cannot open it.
        return VconAdapter(
            "archive", VconAdapter.config_schema().load({"url": f"sqlite:///{tmp_path}"})
        )


def test_registered_and_listed() -> None:
    assert adapter_class("vcon") is VconAdapter


@pytest.mark.parametrize("options", [{}, {"folder": "a", "url": "sqlite://"}])
def test_exactly_one_of_folder_and_url(options: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="exactly one of folder"):
        VconAdapter.config_schema().load(options)


def test_a_file_per_call_that_vcon_in_reads_back(tmp_path: Path) -> None:
    adapter = folder_target(tmp_path)
    report = example_report()
    result = adapter.write(DeliveryJob(report), Journal())
    path = tmp_path / f"{report.call_id}.vcon.json"
    assert result.refs == {"file": str(path)}
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    # The round trip through the written file: the same report but the payload version.
    assert parse_body(path.read_bytes()) == replace(report, payload_version="vcon")
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left


def test_a_rewrite_replaces_the_file_in_one_step(tmp_path: Path) -> None:
    adapter = folder_target(tmp_path)
    report = example_report()
    adapter.write(DeliveryJob(report), Journal())
    path = tmp_path / file_name(report.call_id)
    before = os.stat(path).st_ino
    adapter.write(DeliveryJob(report, fields={"title": "Call"}), Journal())
    assert os.stat(path).st_ino != before  # a new file renamed over the old one
    document = json.loads(path.read_text())
    (attachment,) = document["attachments"]
    assert attachment["type"] == "sipgate_fields"
    assert json.loads(attachment["body"]) == {"title": "Call"}


def test_call_ids_that_are_no_file_names_are_hashed(tmp_path: Path) -> None:
    adapter = folder_target(tmp_path)
    for call_id in ("../escape", ".hidden", "a" * 240, "ümlaut"):
        adapter.write(DeliveryJob(example_report(call_id)), Journal())
        name = file_name(call_id)
        assert len(name) == 64 + len(".vcon.json") and "/" not in name
        assert adapter.count_calls(call_id) == 1
    assert len(list(tmp_path.iterdir())) == 4


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    adapter = folder_target(tmp_path)
    (tmp_path / file_name("blocked")).mkdir()  # a folder where the file should go
    with pytest.raises(RetryableError):
        adapter.write(DeliveryJob(example_report("blocked")), Journal())
    assert [p.name for p in tmp_path.iterdir()] == [file_name("blocked")]


@pytest.mark.parametrize("make", [folder_target, table_target])
def test_erasure_and_retention(tmp_path: Path, make: object) -> None:
    adapter = make(tmp_path / "store", retention_days=30)  # type: ignore[operator]
    assert retaining_targets({"archive": adapter}) == {"archive": adapter}
    old = example_report("old-call")
    adapter.write(DeliveryJob(old), Journal())
    adapter.write(DeliveryJob(example_report("kept-call")), Journal())
    assert adapter.remove_expired(old.start_time + timedelta(days=10)) == 0
    assert adapter.erase_before(old.start_time) == 0
    assert adapter.remove_expired(old.start_time + timedelta(days=31)) == 2
    adapter.write(DeliveryJob(old), Journal())
    assert adapter.erase_call("old-call") == 1
    assert adapter.erase_call("old-call") == 0
    assert adapter.count_calls("old-call") == 0
    adapter.close()


def test_the_table_holds_the_vcon_text(tmp_path: Path) -> None:
    adapter = table_target(tmp_path, table="archive_vcons")
    report = example_report()
    result = adapter.write(DeliveryJob(report), Journal())
    assert result.refs == {"table": "archive_vcons", "call_id": report.call_id}
    assert isinstance(adapter.store, TableStore)
    document = adapter.store.document(report.call_id)
    assert document is not None
    assert parse_body(json.dumps(document).encode()).key_points == report.key_points
    assert datetime.fromisoformat(document["created_at"].replace("Z", "+00:00")) <= datetime.now(
        UTC
    )
    adapter.close()


def test_the_transcript_can_be_left_out(tmp_path: Path) -> None:
    adapter = folder_target(tmp_path, store_transcript=False)
    report = example_report()
    adapter.write(DeliveryJob(report), Journal())
    again = parse_body((tmp_path / file_name(report.call_id)).read_bytes())
    assert (again.transcript, again.transcript_chunks) == ("", ())
    assert again.summary == report.summary


@needs_postgres
@pytest.mark.integration
class TestVconTableOnPostgres(PostgresTargetContract):
    type_name = "vcon"

    def build(self, url: str) -> Adapter:
        return VconAdapter("archive", VconAdapter.config_schema().load({"url": url}))

    def count_logged_calls(self, adapter: Adapter, call_id: str) -> int:
        assert isinstance(adapter, VconAdapter)
        return adapter.count_calls(call_id)


def test_a_relative_folder_is_relative_to_the_configuration(tmp_path: Path) -> None:
    document = {"targets": [{"name": "archive", "type": "vcon", "folder": "vcons"}]}
    config = parse_config(document, base=tmp_path)
    assert config.target("archive").options.folder == tmp_path / "vcons"
    elsewhere = {"targets": [{"name": "archive", "type": "vcon", "folder": str(tmp_path / "x")}]}
    options = parse_config(elsewhere, base=tmp_path / "elsewhere").target("archive").options
    assert options.folder == tmp_path / "x"
    with pytest.raises(ConfigError, match="folder"):
        parse_config({"targets": [{"name": "a", "type": "vcon", "folder": ""}]}, base=tmp_path)
