"""check-config catches what would break delivery: every problem of a target in one run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from connector.cli import main
from connector.config.load import load_config
from connector.problems import ConfigError
from tests.support.adapters import FakeCrm


class DeclaringCrm(FakeCrm):
    """A CRM adapter that declares the fields its call record takes."""

    writable_fields = frozenset({"subject", "comments"})

    def __init__(self, name: str = "declaring", options: Any = None) -> None:
        super().__init__()


DECLARING = f"{__name__}:DeclaringCrm"


def problems_of(
    tmp_path: Path, targets: list[dict[str, Any]], **files: str
) -> set[tuple[str, str]]:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"targets": targets}))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return {(Path(p.file).name, p.path) for p in info.value.problems}


def test_a_policy_error_does_not_hide_the_mapping_errors(tmp_path: Path) -> None:
    mapping = "fields:\n  note: '{{ headlin }}'\ntasks:\n  priority: urgent\n"
    found = problems_of(
        tmp_path,
        [
            {
                "name": "w",
                "type": "database",
                "mapping": "m.yaml",
                "filters": {"directions": ["SIDEWAYS"]},
                "owners": {"tpyo": 1},
            }
        ],
        **{"m.yaml": mapping},
    )
    assert found == {
        ("config.yaml", "targets[0].filters.directions[0]"),
        ("config.yaml", "targets[0].owners.tpyo"),
        ("m.yaml", "fields.note"),
        ("m.yaml", "tasks.priority"),
    }


def test_a_mapping_schema_error_does_not_hide_its_template_errors(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        [{"name": "w", "type": "database", "mapping": "m.yaml", "tasks": {"owner": "boss"}}],
        **{"m.yaml": "transcript: sometimes\nfields:\n  note: '{{ summary | nope }}'\n"},
    )
    assert found == {
        ("m.yaml", "transcript"),
        ("config.yaml", "targets[0].tasks.owner"),
        ("m.yaml", "fields.note"),
    }


def test_on_no_match_create_for_an_object_the_adapter_cannot_create(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        [
            {
                "name": "hs",
                "type": "hubspot",
                "access_token": "t",
                "matching": {"on_no_match": "create_lead"},
            },
            {"name": "sf", "type": DECLARING, "mapping": "m.yaml"},
        ],
        **{"m.yaml": "matching:\n  on_no_match: create_company\nfields: {subject: x}\n"},
    )
    assert found == {
        ("config.yaml", "targets[0].matching.on_no_match"),
        ("m.yaml", "matching.on_no_match"),
    }


def test_fields_the_adapter_does_not_write_and_limits_of_unmapped_fields(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        [
            {"name": "d", "type": DECLARING, "mapping": "m.yaml", "limits": {"subjetc": 80}},
            {"name": "w", "type": "database", "limits": {"titel": 80}},
        ],
        **{"m.yaml": "fields: {subject: '{{ headline }}', coments: '{{ summary }}'}\n"},
    )
    assert found == {
        ("m.yaml", "fields.coments"),
        ("config.yaml", "targets[0].limits.subjetc"),
        ("config.yaml", "targets[1].limits.titel"),
    }


def test_own_and_blocked_numbers_must_be_phone_numbers(tmp_path: Path) -> None:
    filters = {"own_numbers": ["+49 211 63553401", "sales line"], "blocked_numbers": ["12"]}
    found = problems_of(tmp_path, [{"name": "w", "type": "database", "filters": filters}])
    assert found == {
        ("config.yaml", "targets[0].filters.own_numbers[1]"),
        ("config.yaml", "targets[0].filters.blocked_numbers[0]"),
    }


WITHOUT_HUBSPOT = (
    "import sys; sys.modules['hubspot'] = None; from connector.cli import main; main()"
)


def cli_without_hubspot(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_HUBSPOT, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_a_target_whose_extra_is_missing_is_one_problem_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        yaml.safe_dump(
            {
                "targets": [
                    {"name": "hs", "type": "hubspot", "access_token": "t"},
                    {"name": "w", "type": "database", "owners": {"tpyo": 1}},
                ]
            }
        )
    )
    done = cli_without_hubspot("check-config", "--config", "config.yaml", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0] == "Configuration has 2 problem(s):"
    assert "targets[0].type: Adapter type 'hubspot' cannot be used" in lines[1]
    assert "pip install -e '.[hubspot]'" in lines[1]
    assert "targets[1].owners.tpyo" in lines[2]


def test_adapters_lists_only_types_whose_dependencies_import(tmp_path: Path) -> None:
    done = cli_without_hubspot("adapters", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    listed = [line.split()[0] for line in done.stdout.splitlines()]
    assert "hubspot" not in listed and {"database", "salesforce"} <= set(listed)
    assert "hubspot" in done.stderr and "pip install -e '.[hubspot]'" in done.stderr
    complete = CliRunner().invoke(main, ["adapters"])
    assert {"database", "hubspot", "salesforce", "vcon"} <= {
        line.split()[0] for line in complete.output.splitlines()
    }
