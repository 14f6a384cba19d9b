"""vCon in: a vCon written from the draft becomes the same `CallReport` a JSON webhook would."""

from __future__ import annotations

import copy
import json
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connector.payload import PayloadError, parse_body, parse_report, report_from_json
from connector.testing import example_report, minimal_report
from connector.vcon.parse import report_from_vcon
from connector.vcon.write import vcon_document

FIXTURES = Path(__file__).parents[1] / "fixtures"


def inbound() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (FIXTURES / "vcon" / "inbound-call.vcon.json").read_text("utf-8")
    )
    return document


def errors_of(document: Any) -> dict[str, list[str]]:
    with pytest.raises(PayloadError) as info:
        parse_report(document)
    return info.value.messages


def test_the_drafts_parts_become_the_report() -> None:
    report = parse_body(json.dumps(inbound()).encode())
    assert report.call_id == "01928e10-193e-8231-b9a2-279e0d16bc46"
    assert report.payload_version == "vcon"
    assert (report.from_number, report.to_number) == ("4930123456701", "4930123456702")
    assert report.direction == "IN"
    assert report.start_time == datetime(2026, 4, 8, 9, 22, 41, 500000, tzinfo=UTC)
    assert report.duration == timedelta(seconds=61.25)
    assert report.end_time == report.start_time + timedelta(seconds=61.25)
    assert [u.full_name for u in report.users] == ["Max Mustermann"]
    assert report.transcript.startswith("Caller: When will my order arrive?")
    assert report.summary.startswith("The customer asked when the order arrives")
    assert report.key_points == ("Delivery on Friday",)
    assert report.topics == ("Delivery",)
    assert [a.content for a in report.action_items] == ["Send the tracking link."]
    assert report.llm_provider == "EXAMPLE-LLM"
    assert report.headline == "Delivery date of an order"  # the subject, without a headline entry


def test_an_originator_who_is_ours_makes_the_call_outbound() -> None:
    document = inbound()
    document["dialog"][0]["originator"] = 1
    report = report_from_vcon(document)
    assert report.direction == "OUT"
    assert (report.from_number, report.to_number) == ("4930123456702", "4930123456701")
    assert report.remote_number == "4930123456701"


def test_without_an_originator_the_dialogs_first_party_called() -> None:
    document = inbound()
    del document["dialog"][0]["originator"]
    document["dialog"][0]["parties"] = [1, 0]
    assert report_from_vcon(document).direction == "OUT"


def test_a_vcon_marking_no_party_as_ours_is_inbound_from_its_originator() -> None:
    document = inbound()
    del document["parties"][1]["meta"]
    document["dialog"][0]["originator"] = 1
    report = report_from_vcon(document)
    assert report.direction == "IN"
    assert (report.from_number, report.to_number) == ("4930123456702", "4930123456701")
    assert report.users == ()


def test_a_sipgate_object_marks_our_user_with_its_ids() -> None:
    document = inbound()
    document["parties"][1] = {
        "tel": "+4930123456702",
        "name": "Max Mustermann",
        "sipgate": {"userId": "w0", "fullUserId": "1234567w0", "accountId": "1234567"},
    }
    (user,) = report_from_vcon(document).users
    assert (user.user_id, user.full_user_id, user.account_id) == ("w0", "1234567w0", "1234567")
    assert report_from_vcon(document).to_number == "4930123456702"  # a plain number works too


def test_unknown_analysis_types_attachments_and_keys_are_ignored() -> None:
    document = inbound()
    document["analysis"].append({"type": "tts", "encoding": "none", "body": 5})
    document["something_new"] = {"x": 1}
    document["parties"][0]["civicaddress"] = {"country": "DE"}
    assert report_from_vcon(document) == report_from_vcon(inbound())


def test_the_uuid_is_the_call_id_so_a_repeat_is_the_same_call() -> None:
    body = json.dumps(inbound()).encode()
    assert parse_body(body).call_id == report_from_json(body).call_id == inbound()["uuid"]


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda d: d.pop("uuid"), "uuid"),
        (lambda d: d.update(uuid="a\nb"), "uuid"),
        (lambda d: d.update(dialog=[]), "dialog"),
        (lambda d: d["dialog"][0].pop("start"), "dialog.0.start"),
        (lambda d: d["dialog"][0].update(start="yesterday"), "dialog.0.start"),
        (lambda d: d["dialog"][0].update(duration=-1), "dialog.0.duration"),
        (lambda d: d["dialog"][0].update(originator=7), "dialog.0.originator"),
        (lambda d: d["dialog"][0].update(parties=[0, 9]), "dialog.0.parties"),
        (lambda d: d["dialog"][0].update(parties="both"), "dialog.0.parties"),
        (lambda d: d.update(parties=[]), "parties"),
        (lambda d: d["parties"][0].update(tel="tel:+49" + "1" * 80), "parties.0.tel"),
        (lambda d: d["analysis"][1].update(body="{not json"), "analysis.1.body"),
        (lambda d: d["analysis"][1].update(encoding="gzip"), "analysis.1.encoding"),
        (lambda d: d["analysis"][2].update(body="***"), "analysis.2.body"),
        (
            lambda d: d["analysis"][2].update(body={"an": "object"}, encoding="json"),
            "analysis.2.body",
        ),
        (lambda d: d["analysis"][0].update(type=""), "analysis.0.type"),
    ],
)
def test_a_bad_vcon_names_the_field(change: Any, path: str) -> None:
    document = inbound()
    change(document)
    assert path in errors_of(document), errors_of(document)


def test_key_points_must_be_a_list() -> None:
    document = inbound()
    document["analysis"].append(
        {"type": "key_points", "encoding": "json", "body": json.dumps({"a": 1})}
    )
    assert errors_of(document) == {
        "analysis.4.body": ["Must be a list of strings (or of objects with a content string)."]
    }


def test_transcript_chunks_are_checked_like_json_chunks() -> None:
    document = inbound()
    chunks = [{"speaker": "CALLER", "startTime": "soon", "content": "Hello"}]
    document["analysis"][0].update(
        encoding="json", body=json.dumps({"content": "Hello", "chunks": chunks})
    )
    assert "analysis.0.body.chunks.0.startTime" in errors_of(document)


def test_nul_characters_are_refused_in_a_vcon_too() -> None:
    body = json.dumps(inbound()).replace("Erika", "Er\\u0000ika").encode()
    with pytest.raises(PayloadError) as info:
        parse_body(body)
    assert "parties.0.name" in info.value.messages


# --- round trip -------------------------------------------------------------------------------


def _json_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text("utf-8"))


@pytest.mark.parametrize("name", ["example-v1.json", "example-legacy.json"])
def test_a_webhook_through_vcon_out_and_in_is_the_same_report(name: str) -> None:
    report = parse_report(_json_fixture(name))
    again = parse_body(json.dumps(vcon_document(report)).encode())
    # vCon cannot carry the shape a report arrived in: it arrived as a vCon now.
    assert again.payload_version == "vcon"
    for field in fields(report):
        if field.name == "payload_version":
            continue
        assert getattr(again, field.name) == getattr(report, field.name), field.name


def test_what_vcon_cannot_carry_of_a_minimal_call() -> None:
    report = minimal_report()
    again = report_from_vcon(vcon_document(report))
    # A withheld number is a party without tel (it comes back empty); a vCon has no end time of
    # its own (start + duration); everything else survives.
    assert again.from_number == ""
    assert again.end_time == report.start_time + report.duration
    assert replace(again, from_number="anonymous", end_time=None, payload_version="1") == report


def test_outbound_and_several_users_survive_the_round_trip() -> None:
    example = example_report()
    report = replace(
        example,
        direction="OUT",
        from_number=example.to_number,
        to_number=example.from_number,
        users=(*example.users, replace(example.users[0], user_id="w1", full_name="Erika Muster")),
    )
    assert replace(report_from_vcon(vcon_document(report)), payload_version="1") == report


def test_the_written_vcon_uses_the_drafts_shapes() -> None:
    document = vcon_document(example_report(), created_at=datetime(2026, 4, 8, tzinfo=UTC))
    assert document["vcon"] == "0.4.0"
    assert document["created_at"] == "2026-04-08T00:00:00Z"
    assert document["parties"][0]["tel"] == "tel:+4921163553400"
    assert document["dialog"][0]["start"] == "2026-04-08T09:22:41.663000Z"
    assert document["dialog"][0]["duration"] == 82.666
    kinds = [a["type"] for a in document["analysis"]]
    assert kinds[:3] == ["transcript", "headline", "summary"]
    assert all(a["encoding"] in ("none", "json") for a in document["analysis"])
    original = copy.deepcopy(document)
    report_from_vcon(document)
    assert document == original  # reading does not change the document
