"""Tests for connector.render.context: the template context, its reference, time zones."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from connector.payload import CallReport
from connector.render.context import PIPELINE_VARIABLES, VARIABLES, build_context, reference_table
from tests.render.helpers import at, render_one


def test_context_of_v1_report(report_v1: CallReport) -> None:
    context = build_context(report_v1)
    call = context["call"]
    assert call["id"] == "pbx-a1b2c3d4-e5f6-7890-abcd-ef1234567890"
    assert call["direction"] == "IN"
    assert call["direction_label"] == "Inbound call"
    assert call["start"].utcoffset() == dt.timedelta(hours=2)  # CEST in April
    assert call["start"].hour == 11
    assert call["end"] - call["start"] == dt.timedelta(seconds=82, microseconds=666000)
    assert call["date"] == dt.date(2026, 4, 8)
    assert call["duration"] == dt.timedelta(milliseconds=82666)
    assert call["duration_seconds"] == 83
    assert call["duration_human"] == "1 min 23 s"
    assert call["channel"] == {
        "id": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
        "name": "Support Channel",
    }
    assert call["payload_version"] == "1"
    assert context["remote"] == {
        "e164": "+4921163553400",
        "digits": "4921163553400",
        "national": "0211 63553400",
        "international": "+49 211 63553400",
        "display": "0211 63553400",
        "raw": "4921163553400",
        "anonymous": False,
    }
    assert context["local"]["e164"] == "+4921163553401"
    assert context["user"]["full_name"] == "Max Mustermann"
    assert context["users"] == [context["user"]]
    assert context["headline"] == "Invoice inquiry and plan change"
    assert len(context["key_points"]) == 3
    assert context["topics"] == ["Invoice", "Additional package", "Plan change"]
    assert context["action_items"][0] == "Send plan options to the customer by email."
    assert context["small_talk"][0]["topic"] == "Greeting"
    assert context["transcript"].startswith("Caller: Good day")
    assert context["transcript_chunks"][0] == {
        "speaker": "CALLER",
        "start_ms": 3200,
        "end_ms": 12400,
        "content": context["transcript_chunks"][0]["content"],
    }
    assert context["scenarios"] == []
    assert context["language"] == "en"
    assert context["labels"]["summary"] == "Summary"


def test_context_in_german(report_v1: CallReport) -> None:
    context = build_context(report_v1, language="de-DE")
    assert context["language"] == "de"
    assert context["call"]["direction_label"] == "Eingehender Anruf"
    assert context["call"]["duration_human"] == "1 Min. 23 Sek."
    labels = context["labels"]
    assert labels["summary"] == "Zusammenfassung"
    assert labels["key_points"] == "Kernpunkte"
    assert labels["action_items"] == "Aufgaben"
    assert labels["call_from"] == "Anruf mit"
    assert labels["outbound"] == "Ausgehender Anruf"


def test_context_of_legacy_report(report_legacy: CallReport) -> None:
    context = build_context(report_legacy)
    assert context["call"]["payload_version"] == "legacy"
    assert context["call"]["duration_seconds"] == 300
    assert context["call"]["duration_human"] == "5 min"
    assert context["remote"]["e164"] == "+491751234567"
    assert context["remote"]["national"] == "0175 1234567"
    assert context["local"]["e164"] == "+498912345678"
    assert context["users"] == [] and context["user"] is None
    assert context["call"]["channel"] == {"id": "channel_98765", "name": "Sales"}
    assert context["summary"] == "" and context["action_items"] == []
    assert context["transcript"] == "" and context["transcript_chunks"] == []
    text = render_one(
        "{{ call.direction_label }} - {{ headline }}\n{{ labels.call_from }} {{ remote.display }}"
        "{% if summary %}\n{{ summary }}{% endif %}",
        context,
    )
    assert text == (
        "Inbound call - Customer asked about product availability and pricing\n"
        "Call with 0175 1234567"
    )


def test_outbound_call_swaps_parties(report_v1: CallReport) -> None:
    outbound = dataclasses.replace(report_v1, direction="OUT")
    context = build_context(outbound)
    assert context["call"]["direction_label"] == "Outbound call"
    assert context["remote"]["e164"] == "+4921163553401"
    assert context["local"]["e164"] == "+4921163553400"


def test_anonymous_and_foreign_parties(report_v1: CallReport) -> None:
    anonymous = dataclasses.replace(report_v1, from_number="anonymous")
    context = build_context(anonymous, language="de")
    assert context["remote"]["anonymous"] is True
    assert context["remote"]["e164"] == ""
    assert context["remote"]["display"] == "Unterdrückte Nummer"
    assert context["remote"]["raw"] == "anonymous"

    foreign = dataclasses.replace(report_v1, from_number="4312345678")
    assert build_context(foreign)["remote"]["display"] == "+43 1 2345678"

    internal = dataclasses.replace(report_v1, from_number="12")
    party = build_context(internal)["remote"]
    assert party["e164"] == "" and party["display"] == "12" and party["anonymous"] is False


def test_transcript_from_chunks(report_v1: CallReport) -> None:
    only_chunks = dataclasses.replace(report_v1, transcript="")
    transcript = build_context(only_chunks)["transcript"]
    assert transcript.splitlines()[0].startswith("CALLER: Good day")
    assert len(transcript.splitlines()) == 4


def test_extra_is_merged_but_cannot_replace(report_v1: CallReport) -> None:
    context = build_context(report_v1, extra={"record": {"id": "0031"}})
    assert context["record"] == {"id": "0031"}
    with pytest.raises(ValueError, match="call"):
        build_context(report_v1, extra={"call": {}})


def test_unknown_timezone_and_language(report_v1: CallReport) -> None:
    with pytest.raises(ValueError, match="timezone"):
        build_context(report_v1, timezone="Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="timezone"):
        build_context(report_v1, timezone="../../etc/passwd")
    with pytest.raises(ValueError, match="language"):
        build_context(report_v1, language="fr")


def test_the_reference_names_every_key_of_the_context(report_v1: CallReport) -> None:
    names = [variable.name for variable in VARIABLES]
    assert len(names) == len(set(names))
    assert all(variable.meaning for variable in VARIABLES)
    context = build_context(report_v1)
    assert {name for name in names if "." not in name} == set(context)
    groups = {name.split(".", 1)[0] for name in names if "." in name}
    assert groups == {"call", "remote", "local", "labels"}
    for group in groups:
        documented = {name.split(".", 1)[1] for name in names if name.startswith(group + ".")}
        assert documented == set(context[group]), group


def test_the_reference_table_has_one_row_per_variable() -> None:
    rows = reference_table().splitlines()
    assert rows[:2] == ["| name | meaning |", "| --- | --- |"]
    names = [row.split("`")[1] for row in rows[2:]]
    assert names == [v.name for v in (*VARIABLES, *PIPELINE_VARIABLES)]
    assert not {v.name for v in PIPELINE_VARIABLES} & {v.name for v in VARIABLES}
    assert all(row.count(" | ") == 1 for row in rows[2:])  # no unescaped | in a meaning


# --- time zones -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("utc", "local", "zone_name"),
    [
        ("2026-03-29T00:59:59+00:00", "2026-03-29 01:59:59", "CET"),
        ("2026-03-29T01:00:00+00:00", "2026-03-29 03:00:00", "CEST"),
        ("2026-10-25T00:30:00+00:00", "2026-10-25 02:30:00", "CEST"),
        ("2026-10-25T01:30:00+00:00", "2026-10-25 02:30:00", "CET"),
        ("2026-12-31T23:30:00+00:00", "2027-01-01 00:30:00", "CET"),
    ],
)
def test_dst_boundaries(utc: str, local: str, zone_name: str, report_v1: CallReport) -> None:
    context = build_context(at(report_v1, utc))
    start = context["call"]["start"]
    assert start.strftime("%Y-%m-%d %H:%M:%S") == local
    assert start.tzname() == zone_name
    # the same instant; == between zones is always False for times in the repeated hour (PEP 495)
    assert start.astimezone(dt.UTC) == dt.datetime.fromisoformat(utc)
    assert context["call"]["date"] == dt.date.fromisoformat(local[:10])
    rendered = render_one("{{ call.start | datetime('%Y-%m-%d %H:%M:%S %Z') }}", context)
    assert rendered == f"{local} {zone_name}"


def test_other_timezone(report_v1: CallReport) -> None:
    context = build_context(report_v1, timezone="America/New_York")
    assert render_one("{{ call.start | datetime('%H:%M %Z') }}", context) == "05:22 EDT"


def test_call_end_without_end_time(report_v1: CallReport) -> None:
    report = dataclasses.replace(report_v1, end_time=None, duration=dt.timedelta(seconds=90))
    call = build_context(report)["call"]
    assert call["end"] - call["start"] == dt.timedelta(seconds=90)
    assert call["end"].tzinfo == call["start"].tzinfo
