"""The shipped mappings: they load, and render every kind of call within each field's limit."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from connector.adapters import Adapter, CrmRecord, Journal
from connector.adapters.database import DatabaseAdapter
from connector.adapters.hubspot import HubSpotAdapter
from connector.adapters.salesforce import SalesforceAdapter
from connector.adapters.zendesk import ZendeskAdapter
from connector.cli import main
from connector.config.load import load_config
from connector.config.policy import Defaults, TargetAbilities, load_policy
from connector.delivery.planning import plan_delivery
from connector.payload import ActionItem, parse_report
from connector.problems import ConfigError, ConfigProblem
from tests.support.adapters import FakeCrm

ROOT = Path(__file__).parents[2]
#: The built-in adapters, each shipping its default mapping, and the repository's copies.
SHIPPED: dict[type[Adapter], str] = {
    HubSpotAdapter: "hubspot.yaml",
    SalesforceAdapter: "salesforce.yaml",
    DatabaseAdapter: "database.yaml",
    ZendeskAdapter: "zendesk.yaml",
}


def variants(example: dict[str, Any]) -> dict[str, Any]:
    base = parse_report(example)
    return {
        "example": base,
        "umlauts": dataclasses.replace(
            base,
            headline="Rückfrage zur Kündigung - Größe Ä/Ö/Ü ß",
            summary="Frau Müller möchte kündigen.",
            key_points=("Überprüfung der Gebühren",),
            topics=("Kündigung", "Gebühren"),
        ),
        "empty summary": dataclasses.replace(
            base, summary="", key_points=(), topics=(), headline=""
        ),
        "no action items": dataclasses.replace(base, action_items=()),
        "40 action items": dataclasses.replace(
            base,
            action_items=tuple(
                ActionItem(f"Aufgabe Nummer {i}: Angebot schicken") for i in range(40)
            ),
        ),
        "200,000-character transcript": dataclasses.replace(
            base, transcript="Caller: " + ("Lorem ipsum dolor sit amet. " * 7200)[:199_992]
        ),
        "anonymous, no AI": dataclasses.replace(
            base,
            from_number="anonymous",
            headline="",
            summary="",
            key_points=(),
            topics=(),
            action_items=(),
            small_talk=(),
            transcript="",
            transcript_chunks=(),
            users=(),
            channel=None,
        ),
    }


@pytest.mark.parametrize("adapter", list(SHIPPED), ids=lambda cls: cls.type_name)
@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("transcript", ["off", "summary", "full"])
def test_shipped_mapping_renders_every_variant_within_limits(
    example_v1: dict[str, Any], adapter: type[Adapter], language: str, transcript: str
) -> None:
    problems: list[ConfigProblem] = []
    policy = load_policy(
        {"language": language, "transcript": transcript},
        "targets[0]",
        "config.yaml",
        ROOT,
        Defaults(),
        TargetAbilities(("contact", "lead", "company"), ("contact", "lead")),
        problems,
        adapter.default_mapping,
    )
    assert policy is not None, problems
    limits = dict(adapter.field_limits)
    for name, report in variants(example_v1).items():
        crm = FakeCrm([CrmRecord("contact", "K1", ("0211 63553400",))], limits=limits)
        job = plan_delivery(report, policy, crm, Journal()).job
        assert job is not None, name
        assert set(job.fields) == set(policy.fields), name
        for field, value in job.fields.items():
            assert len(value) <= limits.get(field, 10**9), (name, field, len(value))
        for task in job.tasks:
            assert task.subject and len(task.subject) <= 200
        if name == "umlauts":
            assert "Rückfrage zur Kündigung" in " ".join(job.fields.values())
        if language == "de" and adapter is not DatabaseAdapter and name == "example":
            assert "Zusammenfassung" in " ".join(job.fields.values())


def test_the_repositorys_mappings_are_the_shipped_defaults() -> None:
    copies = {p.name: p.read_text() for p in (ROOT / "mappings").glob("*.yaml")}
    shipped = {}
    for cls, name in SHIPPED.items():
        assert cls.default_mapping is not None, cls
        shipped[name] = cls.default_mapping.read_text(encoding="utf-8")
    assert copies == shipped


def test_a_target_without_mapping_uses_its_adapters_default(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        yaml.safe_dump({"targets": [{"name": "crm", "type": "hubspot", "access_token": "t"}]})
    )
    policy = load_config(tmp_path / "config.yaml").targets[0].policy
    assert policy.mapping_file is not None and policy.mapping_file.endswith("mapping.yaml")
    assert {"hs_call_title", "hs_call_body"} <= set(policy.fields)


def write(folder: Path, config: dict[str, Any], mapping: str | None = None) -> Path:
    if mapping is not None:
        (folder / "mappings").mkdir(exist_ok=True)
        (folder / "mappings" / "mine.yaml").write_text(mapping)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_check_config_reports_several_errors_at_once_with_locations(tmp_path: Path) -> None:
    mapping = (
        "transcript: sometimes\n"
        "matching: {tie_break: coin_flip}\n"
        "fields:\n"
        "  title: '{{ headlin }}'\n"
        "  body: '{{ summary | no_such_filter }}'\n"
        "  broken: '{% if %}'\n"
    )
    config = {
        "defaults": {"region": "XX", "timezone": "Mars/Olympus"},
        "targets": [
            {"name": "a", "type": "database", "mapping": "mine.yaml"},
            {"name": "b", "type": "database", "mapping": "absent.yaml"},
            {"name": "c", "type": "database", "filters": {"directions": ["SIDEWAYS"]}},
        ],
    }
    path = write(tmp_path, config, mapping)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    where = {(Path(p.file).name, p.path) for p in info.value.problems}
    assert {
        ("config.yaml", "defaults.region"),
        ("config.yaml", "defaults.timezone"),
        ("mine.yaml", "transcript"),
        ("mine.yaml", "matching.tie_break"),
        ("config.yaml", "targets[1].mapping"),
        ("config.yaml", "targets[2].filters.directions[0]"),
    } <= where
    # Template errors are found once the mapping's other keys are valid.
    path = write(
        tmp_path,
        {"targets": [{"name": "a", "type": "database", "mapping": "mine.yaml"}]},
        mapping.split("fields:")[0].replace("sometimes", "full").replace("coin_flip", "all")
        + "fields:"
        + mapping.split("fields:")[1],
    )
    result = CliRunner().invoke(main, ["check-config", "--config", str(path)])
    assert result.exit_code == 2
    assert "mine.yaml: fields.title: line 1: 'headlin' is undefined" in result.output
    assert "mine.yaml: fields.body:" in result.output and "no_such_filter" in result.output
    assert "mine.yaml: fields.broken:" in result.output


def test_target_overrides_are_reported_in_the_configuration(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "targets": [
                {
                    "name": "a",
                    "type": "database",
                    "transcript": "everything",
                }
            ]
        },
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [(Path(p.file).name, p.path) for p in info.value.problems] == [
        ("config.yaml", "targets[0].transcript")
    ]


def test_dry_run_offline_prints_the_planned_job(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "storage": {"url": "sqlite:///l.db"},
            "targets": [
                {
                    "name": "w",
                    "type": "database",
                    "url": "sqlite:///calls.db",
                }
            ],
        },
    )
    result = CliRunner().invoke(
        main,
        [
            "dry-run",
            "--config",
            str(path),
            "--offline",
            str(ROOT / "tests/fixtures/example-v1.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["targets"]["w"]["job"]["fields"]["title"] == "Invoice inquiry and plan change"
    assert not (tmp_path / "calls.db").exists()  # nothing written


def test_dry_run_with_an_assumed_match(tmp_path: Path, example_v1: dict[str, Any]) -> None:
    from connector.config.load import parse_config
    from connector.dryrun import dry_run

    config = parse_config(
        {"targets": [{"name": "crm", "type": "tests.support.adapters:FakeCrm"}]},
        "config.yaml",
        tmp_path,
    )
    report = parse_report(example_v1)
    out = dry_run(config, report, offline=True, assumptions=["contact:K9:Erika Beispiel"])
    target = out["targets"]["crm"]
    [record] = target["match"]["records"]
    assert (record["type"], record["id"], record["name"]) == ("contact", "K9", "Erika Beispiel")
    assert target["search"]["number"] == "+4921163553400"
    inbound_only = parse_config(
        {
            "targets": [
                {
                    "name": "crm",
                    "type": "tests.support.adapters:FakeCrm",
                    "filters": {"directions": ["OUT"]},
                }
            ]
        },
        "config.yaml",
        tmp_path,
    )
    skipped = dry_run(inbound_only, report, offline=True)
    assert skipped["targets"]["crm"] == {"skipped": "direction IN is not taken by this target"}


def test_schema_command_describes_config_and_mapping() -> None:
    runner = CliRunner()
    config = json.loads(runner.invoke(main, ["schema", "config"]).output)
    target = config["properties"]["targets"]["items"]["oneOf"][0]
    assert target["properties"]["type"]["const"] == "database"
    assert "filters" in target["properties"] and "table_prefix" in target["properties"]
    assert (
        config["properties"]["server"]["properties"]["max_body_bytes"]["anyOf"][0]["default"]
        == 5242880
    )
    mapping = json.loads(runner.invoke(main, ["schema", "mapping"]).output)
    assert mapping["properties"]["transcript"]["enum"] == ["off", "summary", "full"]
    assert mapping["properties"]["matching"]["properties"]["on_no_match"]["enum"][0] == "skip"


def test_the_shipped_files_validate_against_the_published_schemas() -> None:
    import jsonschema

    runner = CliRunner()
    config_schema = json.loads(runner.invoke(main, ["schema", "config"]).output)
    mapping_schema = json.loads(runner.invoke(main, ["schema", "mapping"]).output)
    jsonschema.validate(yaml.safe_load((ROOT / "config.example.yaml").read_text()), config_schema)
    for cls in SHIPPED:
        assert cls.default_mapping is not None
        jsonschema.validate(yaml.safe_load(cls.default_mapping.read_text()), mapping_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {"targets": [{"name": "x", "type": "database", "urll": "y"}]}, config_schema
        )
