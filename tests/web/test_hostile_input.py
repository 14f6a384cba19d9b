"""Hostile and malformed webhook bodies: a clear 4xx, or accepted and deliverable — never a 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from connector.adapters import Adapter, CrmRecord, Journal
from connector.adapters.database import DatabaseAdapter, DatabaseOptions
from connector.adapters.hubspot import HubSpotAdapter
from connector.adapters.salesforce import SalesforceAdapter
from connector.adapters.zendesk import ZendeskAdapter
from connector.config.policy import Defaults, DeliveryPolicy, TargetAbilities, load_policy
from connector.delivery.planning import plan_delivery
from connector.ledger.tables import calls, deliveries
from connector.payload import report_from_json
from connector.problems import ConfigProblem
from connector.services import Services
from connector.web.app import create_app
from tests.support.adapters import FakeCrm

SURROGATE = b"\xed\xa0\x80"  # U+D800 written as raw UTF-8 bytes: no UTF-8 decoder accepts it
#: Every shipped adapter, by the name of its default mapping.
SHIPPED: dict[str, type[Adapter]] = {
    "hubspot.yaml": HubSpotAdapter,
    "salesforce.yaml": SalesforceAdapter,
    "database.yaml": DatabaseAdapter,
    "zendesk.yaml": ZendeskAdapter,
}
LIMITS = {
    "hubspot.yaml": dict(HubSpotAdapter.field_limits),
    "salesforce.yaml": dict(SalesforceAdapter.field_limits),
    "database.yaml": {},
    "zendesk.yaml": dict(ZendeskAdapter.field_limits),
}


@pytest.fixture
def client(services: Services) -> FlaskClient:
    return create_app(services.config, services.ledger).test_client()


def post(client: FlaskClient, body: bytes) -> Any:
    return client.post("/webhooks/sipgate", data=body, content_type="application/json")


def stored(services: Services) -> list[bytes]:
    with services.ledger.connection() as conn:
        return [bytes(b) for b in conn.execute(select(calls.c.raw_body)).scalars()]


@pytest.mark.parametrize(
    "place",
    [
        lambda d: d["assist"]["summary"].update(content="@"),
        lambda d: d["assist"]["transcription"].update(content="@"),
        lambda d: d["call"]["users"][0].update(fullName="@"),
        lambda d: d["assist"]["summary"]["topics"].append("@"),
        lambda d: d["assist"]["provider"].update(llm="@"),
        lambda d: d["call"].update(id="@"),
        lambda d: d["call"].update({"from": "@"}),
        lambda d: d["call"].update(to="@"),
        lambda d: d["call"]["channel"].update(name="@"),
    ],
)
def test_raw_surrogate_bytes_anywhere_are_a_400(
    client: FlaskClient, services: Services, example_v1: dict[str, Any], place: Any
) -> None:
    place(example_v1)
    body = json.dumps(example_v1).encode().replace(b'"@"', b'"x' + SURROGATE + b'"')
    assert SURROGATE in body
    response = post(client, body)
    assert response.status_code == 400, response.json
    assert response.json["error"] == "invalid_json"
    assert "UTF-8" in response.json["message"]
    assert stored(services) == []


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le"])
@pytest.mark.parametrize("text", ["plain", "nul \x00 inside", "lone \ud800 surrogate"])
def test_bodies_that_are_not_utf8_are_a_400(
    client: FlaskClient,
    services: Services,
    example_v1: dict[str, Any],
    encoding: str,
    text: str,
) -> None:
    example_v1["assist"]["summary"]["content"] = text
    body = json.dumps(example_v1, ensure_ascii=False).encode(encoding, errors="surrogatepass")
    response = post(client, body)
    assert response.status_code == 400, response.json
    assert response.json["error"] == "invalid_json"
    assert stored(services) == []


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"9" * 5000])
def test_numbers_json_cannot_carry_are_a_400(
    client: FlaskClient, services: Services, example_legacy: dict[str, Any], literal: bytes
) -> None:
    example_legacy["summary"] = "@"
    body = json.dumps(example_legacy).encode().replace(b'"@"', literal)
    response = post(client, body)
    assert response.status_code == 400, response.json
    assert stored(services) == []


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (
            lambda d: d["assist"]["transcription"]["chunks"][0].update(startTime=10**30),
            "assist.transcription.chunks.0.startTime",
        ),
        (
            lambda d: d["assist"]["transcription"]["chunks"][1].update(endTime=-1),
            "assist.transcription.chunks.1.endTime",
        ),
        (
            lambda d: d["assist"]["transcription"]["chunks"][0].update(speaker="S" * 33),
            "assist.transcription.chunks.0.speaker",
        ),
        (lambda d: d["call"].update(duration=1.5), "call.duration"),
        (lambda d: d["call"].update({"from": "4921163553400\nERROR forged"}), "call.from"),
        (lambda d: d["call"].update(to="49211\r\n"), "call.to"),
        (lambda d: d["call"].update(id="pbx-1\n"), "call.id"),
        (lambda d: d["call"].update(id="pbx-1\u2028forged"), "call.id"),
        (lambda d: d["call"].update(to="4" * 65), "call.to"),
        (lambda d: d["call"]["users"][0].update(fullUserId="x" * 129), "call.users.0.fullUserId"),
        (lambda d: d["call"]["channel"].update(name="n" * 256), "call.channel.name"),
        (lambda d: d["assist"]["provider"].update(llm="m" * 65), "assist.provider.llm"),
        (lambda d: d["assist"]["summary"].update(content="nul \x00"), "assist.summary.content"),
        (lambda d: d["assist"]["summary"]["topics"].append("\udfff"), "assist.summary.topics.3"),
    ],
)
def test_values_no_layer_can_deliver_are_a_422_naming_the_field(
    client: FlaskClient, services: Services, example_v1: dict[str, Any], mutate: Any, path: str
) -> None:
    mutate(example_v1)
    response = post(client, json.dumps(example_v1).encode())
    assert response.status_code == 422, response.json
    assert path in response.json["fields"], response.json
    assert stored(services) == []


@pytest.mark.parametrize("summary", [5, 1.5, True, ["a"], {"content": 7}])
def test_a_legacy_summary_that_is_not_text_is_a_422(
    client: FlaskClient, services: Services, example_legacy: dict[str, Any], summary: Any
) -> None:
    example_legacy["summary"] = summary
    response = post(client, json.dumps(example_legacy).encode())
    assert response.status_code == 422, response.json
    assert "summary" in response.json["fields"]
    assert stored(services) == []


def test_legacy_duration_must_be_whole_seconds(
    client: FlaskClient, example_legacy: dict[str, Any]
) -> None:
    example_legacy["call"]["duration"] = 1.5
    response = post(client, json.dumps(example_legacy).encode())
    assert response.status_code == 422
    assert "call.duration" in response.json["fields"]


# --- the property: 4xx, or accepted and deliverable everywhere ---------------------------------

awkward_text = st.text(max_size=40) | st.sampled_from(
    ["", "x\ny", "nul\x00", "\ud800", "a\udfffb", "\u2028", "\U0001f600", "Ä" * 300, " "]
)
awkward_number = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([10**30, 2**63, -1, 0, 1.5, True])
)
anything = st.recursive(
    st.none() | st.booleans() | awkward_number | awkward_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(awkward_text, inner, max_size=3),
    max_leaves=8,
)


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


times = st.sampled_from(
    ["2026-04-08T09:22:41.663Z", "2026-04-08T11:22:41+02:00", "1999-12-31T23:59:59Z", "garbage"]
)
chunk = st.fixed_dictionaries(
    {},
    optional={
        "speaker": optional(awkward_text),
        "startTime": optional(awkward_number),
        "endTime": optional(awkward_number),
        "content": optional(awkward_text),
    },
)
user = st.fixed_dictionaries(
    {},
    optional={
        k: optional(awkward_text)
        for k in ("userId", "accountId", "fullUserId", "firstName", "lastName", "fullName")
    },
)
v1_document = st.fixed_dictionaries(
    {
        "version": st.sampled_from(["1", 1]),
        "call": st.fixed_dictionaries(
            {
                "id": awkward_text,
                "startTime": times,
                "direction": st.sampled_from(["IN", "OUT"]),
            },
            optional={
                "from": optional(awkward_text),
                "to": optional(awkward_text),
                "endTime": optional(times),
                "duration": optional(awkward_number),
                "users": optional(st.lists(user, max_size=2)),
                "channel": optional(
                    st.fixed_dictionaries({"id": awkward_text}, optional={"name": awkward_text})
                ),
            },
        ),
    },
    optional={
        "assist": optional(
            st.fixed_dictionaries(
                {},
                optional={
                    "provider": optional(st.fixed_dictionaries({"llm": optional(awkward_text)})),
                    "transcription": optional(
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "content": optional(awkward_text),
                                "chunks": optional(st.lists(chunk, max_size=3)),
                            },
                        )
                    ),
                    "callScenarios": optional(st.lists(st.dictionaries(awkward_text, anything))),
                    "callHeadline": optional(st.fixed_dictionaries({"content": awkward_text})),
                    "summary": optional(
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "content": optional(awkward_text),
                                "keyPoints": optional(st.lists(awkward_text, max_size=3)),
                                "topics": optional(st.lists(awkward_text, max_size=3)),
                            },
                        )
                    ),
                    "actionItems": optional(
                        st.lists(st.fixed_dictionaries({"content": awkward_text}), max_size=3)
                    ),
                    "smallTalkItems": optional(
                        st.lists(
                            st.fixed_dictionaries(
                                {}, optional={"topic": awkward_text, "description": awkward_text}
                            ),
                            max_size=2,
                        )
                    ),
                },
            )
        )
    },
)


examples = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _set(document: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        document = document[key]
    document[path[-1]] = value


def _leaf_paths(document: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    items = document.items() if isinstance(document, dict) else enumerate(document)
    for key, value in items:
        yield (*prefix, key)
        if isinstance(value, dict | list) and value:
            yield from _leaf_paths(value, (*prefix, key))


@pytest.fixture(scope="module")
def policies() -> dict[str, DeliveryPolicy]:
    out: dict[str, DeliveryPolicy] = {}
    for name, adapter in SHIPPED.items():
        problems: list[ConfigProblem] = []
        policy = load_policy(
            {"transcript": "full"},
            "targets[0]",
            "config.yaml",
            Path("/nonexistent"),
            Defaults(),
            TargetAbilities(adapter.searchable_objects, adapter.creatable_objects),
            problems,
            adapter.default_mapping,
        )
        assert policy is not None, problems
        out[name] = policy
    assert sorted(out) == sorted(LIMITS)
    return out


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> DatabaseAdapter:
    folder: Path = tmp_path_factory.mktemp("warehouse")
    return DatabaseAdapter("warehouse", DatabaseOptions(url=f"sqlite:///{folder / 'calls.db'}"))


def assert_four_xx_or_deliverable(
    client: FlaskClient,
    services: Services,
    policies: dict[str, DeliveryPolicy],
    warehouse: DatabaseAdapter,
    body: bytes,
) -> None:
    response = post(client, body)
    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.is_json
    if response.status_code >= 300:
        assert 400 <= response.status_code < 500
        assert stored(services) == []
        return
    [raw] = stored(services)
    report = report_from_json(raw)  # the stored body parses again
    for name, policy in policies.items():
        crm = FakeCrm([CrmRecord("contact", "K1", ("0211 63553400",))], limits=LIMITS[name])
        job = plan_delivery(report, policy, crm, Journal()).job  # renders every field
        assert job is not None, name
        if name == "database.yaml":
            warehouse.write(job, Journal())
            assert warehouse.count_calls(report.call_id) == 1
    with services.ledger.engine.begin() as conn:  # the next example starts empty
        conn.execute(delete(deliveries))
        conn.execute(delete(calls))


@examples
@given(document=v1_document, ascii_only=st.booleans())
def test_generated_reports_are_refused_or_deliverable(
    client: FlaskClient,
    services: Services,
    policies: dict[str, DeliveryPolicy],
    warehouse: DatabaseAdapter,
    document: dict[str, Any],
    ascii_only: bool,
) -> None:
    body = json.dumps(document, ensure_ascii=ascii_only).encode(errors="surrogatepass")
    assert_four_xx_or_deliverable(client, services, policies, warehouse, body)


@examples
@given(data=st.data(), ascii_only=st.booleans())
def test_mutated_examples_are_refused_or_deliverable(
    client: FlaskClient,
    services: Services,
    policies: dict[str, DeliveryPolicy],
    warehouse: DatabaseAdapter,
    example_v1: dict[str, Any],
    example_legacy: dict[str, Any],
    data: st.DataObject,
    ascii_only: bool,
) -> None:
    document = json.loads(json.dumps(data.draw(st.sampled_from([example_v1, example_legacy]))))
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        paths = list(_leaf_paths(document))
        if paths:
            _set(document, data.draw(st.sampled_from(paths)), data.draw(anything))
    body = json.dumps(document, ensure_ascii=ascii_only).encode(errors="surrogatepass")
    assert_four_xx_or_deliverable(client, services, policies, warehouse, body)
