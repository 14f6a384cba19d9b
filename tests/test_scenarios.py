"""`sipgate-crm send-example --scenario`: each ready-made call is valid and is what it says."""

from __future__ import annotations

from datetime import timedelta

from click.testing import CliRunner

from connector.cli import main
from connector.payload import CallReport, parse_body
from connector.phone import is_anonymous, is_internal
from connector.scenarios import SCENARIOS, scenario_body


def report(name: str) -> CallReport:
    return parse_body(scenario_body(name))


def test_every_scenario_is_a_valid_report_with_a_call_id_of_its_own() -> None:
    ids = [report(name).call_id for name in SCENARIOS]
    assert len(set(ids)) == len(SCENARIOS)


def test_each_scenario_shows_what_it_names() -> None:
    default = report("default")
    assert default.direction == "IN" and default.transcript and default.headline
    assert is_anonymous(report("anonymous").from_number)
    outbound = report("outbound")
    assert outbound.direction == "OUT" and outbound.from_number == default.to_number
    assert report("short").duration < timedelta(seconds=5) < default.duration
    assert is_internal(report("internal").from_number)
    no_ai = report("no-ai")
    assert (no_ai.transcript, no_ai.headline, no_ai.summary) == ("", "", "")
    german = report("german")
    assert "Rechnung" in german.summary and german.transcript_chunks[0].content.startswith(
        "Guten Tag"
    )
    assert report("legacy").payload_version != default.payload_version


def test_list_describes_every_scenario() -> None:
    listed = CliRunner().invoke(main, ["send-example", "--scenario", "list"])
    assert listed.exit_code == 0
    assert [line.split()[0] for line in listed.output.splitlines()] == list(SCENARIOS)
