"""Ready-made call reports for `sipgate-crm send-example --scenario`: sipgate's example, varied."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from joserfc.jwk import ECKey

from connector.payload import parse_report
from connector.vcon.sign import sign_vcon
from connector.vcon.write import vcon_document

__all__ = ["SCENARIOS", "Scenario", "scenario_body"]

Document = dict[str, Any]

_GERMAN_LINES = (
    ("CALLER", "Guten Tag, ich rufe wegen meiner Rechnung an, sie ist höher als erwartet."),
    ("CALLEE", "Guten Tag, ich sehe gern nach. Wie lautet Ihre Kundennummer?"),
    ("CALLER", "Sie lautet 12345. Außerdem möchte ich meinen Tarif wechseln."),
    ("CALLEE", "Die Rechnung stimmt, ein Zusatzpaket war gebucht. Ich schicke Ihnen die Tarife."),
)


def _example(name: str) -> Document:
    text = resources.files("connector").joinpath(f"examples/{name}").read_text("utf-8")
    document: Document = json.loads(text)
    return document


def _anonymous(document: Document) -> None:
    document["call"]["from"] = "anonymous"


def _outbound(document: Document) -> None:
    call = document["call"]
    call["direction"] = "OUT"
    call["from"], call["to"] = call["to"], call["from"]


def _short(document: Document) -> None:
    document["call"]["duration"] = 4000
    document["call"]["endTime"] = document["call"]["startTime"].replace("09:22:41", "09:22:45")


def _internal(document: Document) -> None:
    document["call"]["from"] = "12"  # an extension: a colleague, not a customer


def _no_ai(document: Document) -> None:
    document["assist"] = None


def _german(document: Document) -> None:
    assist = document["assist"]
    chunks = [
        {**chunk, "speaker": speaker, "content": line}
        for chunk, (speaker, line) in zip(
            assist["transcription"]["chunks"], _GERMAN_LINES, strict=True
        )
    ]
    assist["transcription"] = {
        "content": "\n".join(
            f"{'Anrufer' if s == 'CALLER' else 'Angerufener'}: {line}" for s, line in _GERMAN_LINES
        ),
        "chunks": chunks,
    }
    assist["callHeadline"] = {"content": "Rechnungsfrage und Tarifwechsel"}
    assist["summary"] = {
        "content": "Der Kunde fragte nach einer hohen Rechnung; sie war wegen eines Zusatzpakets "
        "korrekt. Ein Tarifwechsel wurde besprochen.",
        "keyPoints": ["Die Rechnung war korrekt.", "Der Kunde möchte den Tarif wechseln."],
        "topics": ["Rechnung", "Tarifwechsel"],
    }
    assist["actionItems"] = [{"content": "Tarifoptionen per E-Mail senden."}]
    assist["smallTalkItems"] = []


def _as_vcon(document: Document) -> Any:
    return vcon_document(parse_report(document))


def _as_signed_vcon(document: Document) -> Any:
    # A key made for this one call: accepted where no server.vcon_keys are configured, refused
    # (invalid_signature) where they are.
    return sign_vcon(_as_vcon(document), ECKey.generate_key("P-256"))


@dataclass(frozen=True)
class Scenario:
    """One variant: what it shows, the example it starts from, how it changes it and in which
    form it is sent (`send_as`: the v1 JSON as it is, or e.g. as a vCon)."""

    description: str
    change: Callable[[Document], None] | None = None
    example: str = "example-v1.json"
    send_as: Callable[[Document], Any] | None = None


SCENARIOS: dict[str, Scenario] = {
    "default": Scenario("sipgate's example: an inbound support call with AI content"),
    "anonymous": Scenario("a caller who withholds their number", _anonymous),
    "outbound": Scenario("a call your user made to the customer", _outbound),
    "short": Scenario("a four-second call (min_duration_seconds filters)", _short),
    "internal": Scenario("a call from an internal extension (skip_internal)", _internal),
    "no-ai": Scenario("a call without transcript or summary (assist: null)", _no_ai),
    "german": Scenario("transcript, headline and summary in German", _german),
    "legacy": Scenario("the older payload shape without a version", example="example-legacy.json"),
    "vcon": Scenario("sipgate's example as a vCon (draft-ietf-vcon-vcon-core)", send_as=_as_vcon),
    "vcon-signed": Scenario("the vCon signed (JWS) with a throw-away key", send_as=_as_signed_vcon),
}


def scenario_body(name: str, unique: str = "") -> bytes:
    """The body of scenario `name`, its call id ending in ``-<name>`` (but the default's) and
    then in ``-<unique>`` when given."""
    scenario = SCENARIOS[name]
    document = _example(scenario.example)
    if scenario.change is not None:
        scenario.change(document)
    if name != "default":
        document["call"]["id"] = f"{document['call']['id']}-{name}"
    if unique:
        document["call"]["id"] = f"{document['call']['id']}-{unique}"
    sent = scenario.send_as(document) if scenario.send_as is not None else document
    return json.dumps(sent, ensure_ascii=False).encode()
