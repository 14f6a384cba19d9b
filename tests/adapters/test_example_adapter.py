"""The worked example of docs/adapters.md: its adapter passes the contract suite, the guide
shows the very files, and a broken variant of it fails the suite."""

from __future__ import annotations

import importlib
import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from connector.adapters import (
    Adapter,
    CheckResult,
    DeliveryJob,
    Failure,
    Journal,
    WriteResult,
)
from connector.config.policy import Defaults, TargetAbilities, load_policy
from connector.problems import ConfigProblem
from connector.testing import AdapterContract

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "docs" / "examples"
sys.path.insert(0, str(EXAMPLES))
contract = importlib.import_module("minicrm_contract")
example = importlib.import_module("minicrm_adapter")

TestMiniCrmContract = contract.TestMiniCrmContract
MiniCrmAdapter = example.MiniCrmAdapter
MiniCrmOptions = example.MiniCrmOptions
POLICY = example.POLICY


def _guide_files() -> dict[str, str]:
    """The code blocks of the guide that name their file (``<!-- file: PATH -->``)."""
    guide = (ROOT / "docs" / "adapters.md").read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- file: (\S+) -->\n```[a-z]*\n(.*?)^```$", guide, re.S | re.M)
    return dict(blocks)


def test_the_guide_shows_the_example_files_as_they_are() -> None:
    files = _guide_files()
    assert sorted(files) == [
        "docs/examples/minicrm_adapter.py",
        "docs/examples/minicrm_contract.py",
        "docs/examples/minicrm_mapping.yaml",
    ]
    for path, text in files.items():
        assert (ROOT / path).read_text(encoding="utf-8") == text, path


def test_the_example_mapping_loads_as_the_default_of_a_target(tmp_path: Path) -> None:
    problems: list[ConfigProblem] = []
    policy = load_policy(
        {},
        "targets[0]",
        "config.yaml",
        tmp_path,
        Defaults(),
        TargetAbilities(MiniCrmAdapter.searchable_objects, MiniCrmAdapter.creatable_objects),
        problems,
        MiniCrmAdapter.default_mapping,
    )
    assert problems == [] and policy is not None
    assert set(policy.fields) == {"subject", "note"}


def test_the_example_adapter_is_at_most_200_lines() -> None:
    assert len((EXAMPLES / "minicrm_adapter.py").read_text().splitlines()) <= 200


class BrokenMiniCrmAdapter(MiniCrmAdapter):
    """The example with the mistakes the suite exists for."""

    def __init__(self, name: str, options: MiniCrmOptions) -> None:
        super().__init__(name, options)
        leaky = replace(POLICY, detail=lambda body: str(body), statuses={401: Failure.RETRY})
        self.http.policy = leaky  # passes on the CRM's text, retries a rejected token

    def check(self) -> list[CheckResult]:
        self.http.request("GET", "me", operation="checking the token")  # raises when down
        return [CheckResult(True, "fine")]

    def write(self, job: DeliveryJob, journal: Journal) -> WriteResult:
        refs = {key: self._create(path, body, key) for key, path, body in self._operations(job)}
        return WriteResult(refs)  # no journal: every retry writes again

    def describe_write(self, job: DeliveryJob) -> list[dict[str, Any]]:
        self.write(job, Journal())
        return super().describe_write(job)


class BrokenContract(TestMiniCrmContract):
    __test__ = False  # run by hand below, not collected

    def make_adapter(self, tmp_path: Path) -> Adapter:
        options = MiniCrmAdapter.config_schema().load(
            {"api_token": contract.TOKEN, "base_url": contract.BASE_URL}
        )
        return BrokenMiniCrmAdapter("minicrm", options)

    def make_unreachable_adapter(self, tmp_path: Path) -> Adapter:
        options = MiniCrmAdapter.config_schema().load(
            {"api_token": contract.TOKEN, "base_url": "https://down.invalid/v1"}
        )
        return BrokenMiniCrmAdapter("minicrm", options)


def run_suite(suite: AdapterContract, tmp_path: Path) -> dict[str, str]:
    """Every behaviour of `suite` (each parameter too): ``passed``, ``failed`` or ``skipped``."""
    outcomes: dict[str, str] = {}
    for name in sorted(n for n in dir(suite) if n.startswith("test_")):
        method = getattr(suite, name)
        marks = [m for m in getattr(method, "pytestmark", []) if m.name == "parametrize"]
        for value in marks[0].args[1] if marks else [None]:
            folder = tmp_path / f"{name}-{value}"
            folder.mkdir()
            suite.crm = contract.FakeMiniCrm()
            with suite.crm.target:
                try:
                    method(folder) if value is None else method(folder, value)
                    outcome = "passed"
                except pytest.skip.Exception:
                    outcome = "skipped"
                except Exception:  # an assertion, or an error the adapter should not raise
                    outcome = "failed"
                finally:
                    for adapter in getattr(suite, "_made", []):
                        adapter.close()
                    suite._made = []
            outcomes[name if value is None else f"{name}[{value}]"] = outcome
    return outcomes


def test_the_suite_has_at_least_25_behaviours() -> None:
    assert len([n for n in dir(AdapterContract) if n.startswith("test_")]) >= 25


def test_the_example_passes_every_behaviour_it_can_run(tmp_path: Path) -> None:
    outcomes = run_suite(TestMiniCrmContract(), tmp_path)
    assert {k for k, v in outcomes.items() if v != "passed"} == {
        "test_overflow_text_is_stored_when_supported",
        # The example does not declare supports_name_search: its name behaviours skip.
        "test_a_name_search_finds_a_record_by_a_part_of_its_name",
        "test_a_name_nobody_has_finds_nothing",
        "test_a_name_search_escapes_what_a_person_types",
    }


def test_the_suite_fails_a_broken_adapter(tmp_path: Path) -> None:
    failed = {k for k, v in run_suite(BrokenContract(), tmp_path).items() if v == "failed"}
    assert failed >= {
        "test_a_repeated_delivery_does_not_log_twice",
        "test_a_retry_after_a_lost_answer_writes_exactly_once",
        "test_check_on_an_unreachable_target_fails_without_raising",
        "test_describe_write_writes_nothing",
        "test_every_error_answer_is_mapped_to_its_error_class[401]",
        "test_no_personal_data_or_token_in_any_error_message[400]",
        "test_no_personal_data_or_token_in_any_error_message[403]",
        "test_no_personal_data_or_token_in_any_error_message[500]",
    }
    assert "test_logs_the_example_call_once" not in failed  # what works still passes
