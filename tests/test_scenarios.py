"""`sipgate-crm send-example --scenario`: each ready-made call is valid and is what it says."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner
from joserfc.jwk import ECKey

from connector.cli import main
from connector.payload import CallReport, parse_body
from connector.phone import is_anonymous, is_internal
from connector.scenarios import SCENARIOS, scenario_body
from connector.vcon.errors import BadSignature
from connector.vcon.sign import VconTrust


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


def test_the_vcon_scenarios_carry_the_example_as_a_vcon() -> None:
    default = report("default")
    vcon = report("vcon")
    assert json.loads(scenario_body("vcon"))["vcon"] == "0.4.0"
    assert vcon.payload_version == "vcon" and vcon.call_id == f"{default.call_id}-vcon"
    assert (vcon.summary, vcon.transcript_chunks) == (default.summary, default.transcript_chunks)
    signed = json.loads(scenario_body("vcon-signed"))
    assert set(signed) == {"payload", "signatures"}
    assert report("vcon-signed").summary == default.summary
    # Signed with a key of its own: a service with vcon_keys refuses it.
    other = ECKey.generate_key("P-256")
    trust = VconTrust.from_specs([dict(other.as_dict(private=False))], max_payload_bytes=10**6)
    with pytest.raises(BadSignature):
        parse_body(scenario_body("vcon-signed"), trust)


def test_unique_gives_every_form_a_fresh_call_id() -> None:
    assert report("default").call_id + "-abc" == parse_body(scenario_body("default", "abc")).call_id
    assert parse_body(scenario_body("vcon", "abc")).call_id.endswith("-vcon-abc")
