"""Payload validation: both sipgate shapes become one CallReport; bad input names its fields."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connector.payload import PayloadError, UnsupportedVersion, parse_report


def test_v1_example_becomes_a_complete_report(example_v1: dict[str, Any]) -> None:
    report = parse_report(example_v1)
    assert report.call_id == "pbx-a1b2c3d4-e5f6-7890-abcd-ef1234567890"
    assert report.payload_version == "1"
    assert report.from_number == "4921163553400"
    assert report.remote_number == "4921163553400"
    assert report.local_number == "4921163553401"
    assert report.start_time == datetime(2026, 4, 8, 9, 22, 41, 663000, tzinfo=UTC)
    assert report.duration == timedelta(milliseconds=82666)
    assert report.direction == "IN"
    assert report.users[0].full_user_id == "1234567w0"
    assert report.channel is not None and report.channel.name == "Support Channel"
    assert report.headline == "Invoice inquiry and plan change"
    assert len(report.key_points) == 3
    assert report.topics == ("Invoice", "Additional package", "Plan change")
    assert report.action_items[0].content.startswith("Send plan options")
    assert report.small_talk[0].topic == "Greeting"
    assert len(report.transcript_chunks) == 4
    assert report.transcript_chunks[0].start_ms == 3200
    assert report.scenarios == ()
    assert report.llm_provider == "AZURE"


def test_legacy_shape_becomes_the_same_report_type(example_legacy: dict[str, Any]) -> None:
    report = parse_report(example_legacy)
    assert report.payload_version == "legacy"
    assert report.from_number == "491751234567"  # the + is dropped, as in version 1
    assert report.to_number == "498912345678"
    assert report.start_time == datetime(2024, 6, 12, 14, 20, tzinfo=UTC)
    assert report.duration == timedelta(seconds=300)  # seconds in this shape
    assert report.direction == "IN"
    assert report.headline == "Customer asked about product availability and pricing"
    assert report.channel is not None and report.channel.name == "Sales"
    assert report.summary == "" and report.action_items == ()


def test_legacy_outbound_and_optional_ai_parts(example_legacy: dict[str, Any]) -> None:
    example_legacy["call"]["direction"] = "outbound"
    example_legacy["summary"] = "Asked for a quote."
    example_legacy["actionItems"] = [{"content": "Send quote"}, "Call back Friday"]
    report = parse_report(example_legacy)
    assert report.direction == "OUT"
    assert report.remote_number == "498912345678"
    assert report.summary == "Asked for a quote."
    assert [a.content for a in report.action_items] == ["Send quote", "Call back Friday"]


def test_unknown_fields_are_ignored(example_v1: dict[str, Any]) -> None:
    example_v1["newTopLevel"] = {"x": 1}
    example_v1["call"]["recordingUrl"] = "https://example.invalid/r"
    example_v1["assist"]["sentiment"] = "positive"
    example_v1["call"]["users"][0]["email"] = "max@example.invalid"
    assert parse_report(example_v1).call_id


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("assist"),
        lambda d: d.update(assist=None),
        lambda d: d["assist"].update(summary=None, actionItems=None, callHeadline=None),
        lambda d: d["assist"].pop("summary"),
        lambda d: d["assist"].update(transcription=None, smallTalkItems=None, provider=None),
        lambda d: d["assist"]["summary"].update(keyPoints=None, topics=None, content=None),
    ],
)
def test_missing_or_null_ai_parts_are_tolerated(example_v1: dict[str, Any], mutate: Any) -> None:
    mutate(example_v1)
    report = parse_report(example_v1)
    assert report.call_id
    assert isinstance(report.summary, str)


@pytest.mark.parametrize(("number", "kept"), [("", ""), ("anonymous", "anonymous"), (None, "")])
def test_withheld_numbers_are_accepted(
    example_v1: dict[str, Any], number: str | None, kept: str
) -> None:
    example_v1["call"]["from"] = number
    assert parse_report(example_v1).from_number == kept


def test_several_users(example_v1: dict[str, Any]) -> None:
    second = copy.deepcopy(example_v1["call"]["users"][0])
    second.update(userId="w1", fullUserId="1234567w1", fullName="Erika Musterfrau")
    example_v1["call"]["users"].append(second)
    assert [u.user_id for u in parse_report(example_v1).users] == ["w0", "w1"]


def test_scenarios_are_kept(example_v1: dict[str, Any]) -> None:
    example_v1["assist"]["callScenarios"] = [{"name": "Complaint", "matched": True}]
    assert parse_report(example_v1).scenarios == ({"name": "Complaint", "matched": True},)


def test_schema_errors_name_every_field(example_v1: dict[str, Any]) -> None:
    example_v1["call"]["startTime"] = "yesterday"
    example_v1["call"]["direction"] = "SIDEWAYS"
    del example_v1["call"]["id"]
    with pytest.raises(PayloadError) as info:
        parse_report(example_v1)
    assert set(info.value.messages) == {"call.startTime", "call.direction", "call.id"}


def test_nested_list_errors_carry_their_index(example_v1: dict[str, Any]) -> None:
    example_v1["assist"]["actionItems"] = [{"content": "ok"}, {"content": 42}]
    with pytest.raises(PayloadError) as info:
        parse_report(example_v1)
    assert "assist.actionItems.1.content" in info.value.messages


@pytest.mark.parametrize("version", ["2", "0.9", 7, None, ""])
def test_unknown_version_is_its_own_error(example_v1: dict[str, Any], version: Any) -> None:
    example_v1["version"] = version
    with pytest.raises(UnsupportedVersion) as info:
        parse_report(example_v1)
    assert "version" in info.value.messages


def test_integer_version_one_is_accepted(example_v1: dict[str, Any]) -> None:
    example_v1["version"] = 1
    assert parse_report(example_v1).payload_version == "1"


@pytest.mark.parametrize("document", [[], "text", 3, None])
def test_non_object_documents_are_rejected(document: Any) -> None:
    with pytest.raises(PayloadError):
        parse_report(document)


def test_timezone_offsets_are_normalised_to_utc(example_v1: dict[str, Any]) -> None:
    example_v1["call"]["startTime"] = "2026-04-08T11:22:41+02:00"
    assert parse_report(example_v1).start_time == datetime(2026, 4, 8, 9, 22, 41, tzinfo=UTC)


def test_missing_duration_is_derived_from_the_times(example_v1: dict[str, Any]) -> None:
    example_v1["call"]["duration"] = None
    assert parse_report(example_v1).duration == timedelta(milliseconds=82666)


def test_transcript_chunk_errors_carry_their_index(example_v1: dict[str, Any]) -> None:
    chunks = example_v1["assist"]["transcription"]["chunks"]
    chunks[1] = "not an object"
    chunks[2]["startTime"] = "soon"
    chunks[3]["content"] = 7
    with pytest.raises(PayloadError) as info:
        parse_report(example_v1)
    assert set(info.value.messages) == {
        "assist.transcription.chunks.1._schema",
        "assist.transcription.chunks.2.startTime",
        "assist.transcription.chunks.3.content",
    }


def test_long_transcripts_keep_every_chunk(example_v1: dict[str, Any]) -> None:
    chunk = example_v1["assist"]["transcription"]["chunks"][0]
    example_v1["assist"]["transcription"]["chunks"] = [
        {**chunk, "startTime": i * 1000, "extraField": True} for i in range(600)
    ]
    report = parse_report(example_v1)
    assert len(report.transcript_chunks) == 600
    assert report.transcript_chunks[-1].start_ms == 599000
