"""Retention and erasure: what is removed when, and that removed text is gone from the files."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connector.cli import main, parse_duration
from connector.config.sections import Config, RetentionConfig
from connector.delivery.retention import apply_retention, retaining_targets
from connector.ledger.tables import DONE
from connector.payload import parse_report
from connector.services import Services
from connector.sql import scrub_freed_pages

SENTENCE = "Quokka marmalade ships every second Tuesday from Wuppertal."


@pytest.fixture
def call(example_v1: dict[str, Any]) -> dict[str, Any]:
    """The example call, made an hour ago, with a transcript sentence no other file contains."""
    start = datetime.now(UTC) - timedelta(hours=1)
    example_v1["call"]["startTime"] = start.isoformat().replace("+00:00", "Z")
    example_v1["call"]["endTime"] = (
        (start + timedelta(minutes=2)).isoformat().replace("+00:00", "Z")
    )
    example_v1["assist"]["transcription"]["content"] += "\nCaller: " + SENTENCE
    example_v1["assist"]["transcription"]["chunks"][0]["content"] += " " + SENTENCE
    return example_v1


def _files_holding(folder: Path, text: str) -> list[str]:
    return sorted(
        p.name for p in folder.iterdir() if p.is_file() and text.encode() in p.read_bytes()
    )


def _deliver(services: Services, document: dict[str, Any], targets: tuple[str, ...]) -> list[int]:
    """Store the call for `targets`; deliver it to the configured ones."""
    ids = services.ledger.store_call(parse_report(document), json.dumps(document).encode(), targets)
    assert ids
    pipeline = services.pipeline()
    for delivery, target in zip(ids, targets, strict=True):
        if target in services.adapters:
            pipeline.process(delivery)
    return ids


def _open(write_config: Callable[..., Config], tmp_path: Path, **target: Any) -> Services:
    return Services.open(
        write_config(
            targets=[
                {
                    "name": "warehouse",
                    "type": "database",
                    "url": f"sqlite:///{tmp_path / 'calls.db'}",
                    **target,
                }
            ]
        )
    )


def test_retention_removes_content_then_calls_and_the_bytes_leave_the_files(
    write_config: Callable[..., Config], tmp_path: Path, call: dict[str, Any]
) -> None:
    services = _open(write_config, tmp_path, retention_days=30)
    try:
        _deliver(services, call, ("warehouse",))
        assert services.ledger.counts() == {DONE: 1}
        targets = retaining_targets(services.adapters)
        assert set(targets) == {"warehouse"}
        assert _files_holding(tmp_path, SENTENCE)  # the test can fail: the text was written

        policy = RetentionConfig(content_days=7, metadata_days=90)
        soon = apply_retention(services.ledger, policy, targets, datetime.now(UTC))
        assert (soon.content, soon.calls, soon.targets) == (0, 0, {"warehouse": 0})

        later = datetime.now(UTC) + timedelta(days=8)
        week = apply_retention(services.ledger, policy, targets, later)
        assert (week.content, week.calls) == (1, 0)
        [kept] = services.ledger.recent_calls()
        assert kept.call_id == call["call"]["id"] and kept.deliveries[0].status == DONE
        # The ledger no longer holds the sentence (file and WAL); the warehouse still does.
        assert {name.split(".")[0] for name in _files_holding(tmp_path, SENTENCE)} == {"calls"}

        month = apply_retention(services.ledger, policy, targets, later + timedelta(days=23))
        assert month.targets == {"warehouse": 1}
        assert _files_holding(tmp_path, SENTENCE) == []

        year = apply_retention(services.ledger, policy, targets, later + timedelta(days=90))
        assert year.calls == 1 and services.ledger.recent_calls() == []
    finally:
        services.close()


def test_content_stays_while_a_delivery_still_needs_it(
    services: Services, call: dict[str, Any]
) -> None:
    services.ledger.store_call(parse_report(call), json.dumps(call).encode(), ["warehouse"])
    policy = RetentionConfig(content_days=1)
    later = datetime.now(UTC) + timedelta(days=2)
    assert apply_retention(services.ledger, policy, {}, later).content == 0
    assert _files_holding(Path(services.config.storage.url[10:]).parent, SENTENCE)


def test_a_call_without_content_is_not_replayed(services: Services, call: dict[str, Any]) -> None:
    _deliver(services, call, ("warehouse",))
    later = datetime.now(UTC) + timedelta(days=2)
    assert apply_retention(services.ledger, RetentionConfig(content_days=1), {}, later).content == 1
    assert services.ledger.replay(call["call"]["id"]) == []


def test_purge_call_erases_it_everywhere_and_names_the_crm_records(
    services: Services, call: dict[str, Any], tmp_path: Path
) -> None:
    [_, crm] = _deliver(services, call, ("warehouse", "crm"))
    claim = services.ledger.claim(crm, timedelta(seconds=60))
    assert claim is not None
    services.ledger.complete(claim, {"call": "4711", "tasks": ["12", "13"], "call_pending": 1})
    services.close()
    config = str(services.config.source)

    result = CliRunner().invoke(main, ["purge", "--config", config, "--call", call["call"]["id"]])
    assert result.exit_code == 0, result.output
    assert "Ledger: 1 call(s) removed." in result.output
    assert "Target warehouse: 1 call(s) removed." in result.output
    assert 'crm (not configured): {"call": "4711", "tasks": ["12", "13"]}' in result.output
    assert _files_holding(tmp_path, SENTENCE) == []

    again = CliRunner().invoke(main, ["purge", "--config", config, "--call", call["call"]["id"]])
    assert again.exit_code == 1 and "No call" in again.output


def test_purge_older_than(services: Services, call: dict[str, Any]) -> None:
    _deliver(services, call, ("warehouse",))
    services.close()
    config = str(services.config.source)
    runner = CliRunner()
    kept = runner.invoke(main, ["purge", "--config", config, "--older-than", "1d"])
    assert "Ledger: 0 call(s) removed." in kept.output
    assert len(services.ledger.recent_calls()) == 1
    gone = runner.invoke(main, ["purge", "--config", config, "--older-than", "0m"])
    assert "Ledger: 1 call(s) removed." in gone.output
    assert "Target warehouse: 1 call(s) removed." in gone.output
    assert services.ledger.recent_calls() == []
    both = runner.invoke(main, ["purge", "--config", config])
    assert both.exit_code == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("12h", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        ("8w", timedelta(weeks=8)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "30", "d", "1.5d", "-1d", "3y"])
def test_bad_durations(text: str) -> None:
    import click

    with pytest.raises(click.BadParameter):
        parse_duration(text)


def test_scrubbing_reports_success_on_an_idle_database(services: Services) -> None:
    assert scrub_freed_pages(services.ledger.engine) is True


def test_metadata_may_not_outlive_content(write_config: Callable[..., Config]) -> None:
    from connector.problems import ConfigError

    with pytest.raises(ConfigError) as caught:
        write_config(retention={"content_days": 30, "metadata_days": 7})
    assert [p.path for p in caught.value.problems] == ["retention.metadata_days"]
    assert write_config(retention={"content_days": 7}).retention.content_days == 7
