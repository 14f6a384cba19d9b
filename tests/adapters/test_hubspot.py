"""The HubSpot target, through the real SDK over HTTP against the stateful HubSpot test server.

All people, companies and numbers are fictional: 030 23125xxx is a range the Bundesnetzagentur
keeps for fiction, the owners live at example.com.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from hubspot.crm.association_type import AssociationType
from marshmallow import ValidationError

from connector.adapters import (
    Adapter,
    CrmRecord,
    DeliveryJob,
    Journal,
    MemoryMemo,
    PermanentError,
    RetryableError,
    TargetParked,
    TaskSpec,
)
from connector.adapters.hubspot import (
    ASSOCIATION_TYPES,
    PENDING_SETTLE_SECONDS,
    HubSpotAdapter,
    HubSpotOptions,
)
from connector.adapters.hubspot.options import RateLimitOptions
from connector.adapters.kit.ratelimit import Budget, MemorySlotStore, RateLimiter
from connector.config.load import parse_config
from connector.config.policy import DeliveryPolicy, MatchingPolicy, TaskPolicy
from connector.config.sections import TargetConfig
from connector.delivery.planning import plan_delivery
from connector.payload import CallReport, Channel
from connector.phone import PhoneNumber, parse_sipgate, same_number
from connector.render.sandbox import make_environment
from connector.testing import AdapterContract, example_report, minimal_report
from tests.fakes.base import ManualClock
from tests.fakes.hubspot_server import DEFAULT_TOKEN, Association, HubSpotTestServer
from tests.support.metrics import crm_requests, logged_statuses

CALLER_DIGITS = "493023125012"  # as sipgate sends it
CALLER = parse_sipgate(CALLER_DIGITS)
assert CALLER is not None
OTHER = parse_sipgate("493023125077")
assert OTHER is not None
ERIKA_OWNER = "77001"
MAX_OWNER = "77002"
MARCH_28_2230Z = datetime(2026, 3, 28, 22, 30, tzinfo=UTC).timestamp()


def start_server(**settings: Any) -> HubSpotTestServer:
    """A started server whose calls know HubSpot's ``hs_call_external_id`` and two owners.

    Seeded before it starts, so a failing seed leaves no server running.
    """
    settings.setdefault("ten_second_limit", 100_000)
    settings.setdefault("search_per_second_limit", 100_000)
    server = HubSpotTestServer(**settings)
    server.add_property("calls", "hs_call_external_id")
    server.add_owner(ERIKA_OWNER, "erika.mustermann@example.com", "Erika", "Mustermann")
    server.add_owner(MAX_OWNER, "max.mustermann@example.com", "Max", "Mustermann")
    return server.start()


@pytest.fixture
def server() -> Iterator[HubSpotTestServer]:
    with start_server() as running:
        yield running


def options(server: HubSpotTestServer, **extra: Any) -> HubSpotOptions:
    """Loaded options pointing at `server`, with budgets that do not slow tests down."""
    document: dict[str, Any] = {
        "access_token": DEFAULT_TOKEN,
        "base_url": server.url,
        "connect_timeout": 2,
        "read_timeout": 5,
        "rate_limit": {"requests_per_10s": 100_000, "searches_per_second": 100_000},
    }
    document.update(extra)
    loaded: HubSpotOptions = HubSpotAdapter.config_schema().load(document)
    return loaded


def make(
    server: HubSpotTestServer, owners: dict[str, str] | None = None, **extra: Any
) -> HubSpotAdapter:
    """An adapter for `server`; `owners` are the policy's users' owners its check verifies."""
    made = HubSpotAdapter("hubspot-test", options(server, **extra))
    made.preflight.owner_refs.update({f"owners.users.{u}": o for u, o in (owners or {}).items()})
    return made


@pytest.fixture
def adapter(server: HubSpotTestServer) -> Iterator[HubSpotAdapter]:
    made = make(server)
    yield made
    made.close()


def calls_logged(server: HubSpotTestServer, call_id: str) -> list[dict[str, Any]]:
    return [
        c for c in server.objects("calls") if c["properties"].get("hs_call_external_id") == call_id
    ]


def tasks(*subjects: str, owner: str | None = None) -> tuple[TaskSpec, ...]:
    return tuple(
        TaskSpec(subject, f"Details zu {subject}", date(2026, 4, 10), "high", owner)
        for subject in subjects
    )


def edges(server: HubSpotTestServer, from_type: str, object_id: str) -> set[tuple[str, str, int]]:
    return {(a.to_type, a.to_id, a.type_id) for a in server.associations(from_type, object_id)}


# ------------------------------------------------------------------------------------------
# The contract every adapter passes
# ------------------------------------------------------------------------------------------


class TestHubSpotContract(AdapterContract):
    type_name = "hubspot"

    @pytest.fixture(autouse=True)
    def _running_server(self, server: HubSpotTestServer) -> None:
        self.server = server

    def make_adapter(self, tmp_path: Path) -> Adapter:
        self.wall = ManualClock(time.time())
        return HubSpotAdapter("hubspot-test", options(self.server), wall_clock=self.wall)

    def let_time_pass(self, adapter: Adapter, seconds: float) -> bool:
        self.wall.advance(seconds)
        return True

    def make_unreachable_adapter(self, tmp_path: Path) -> Adapter:
        return make(self.server, base_url="http://127.0.0.1:1")

    def count_logged_calls(self, adapter: Adapter, call_id: str) -> int:
        return len(calls_logged(self.server, call_id))

    def add_record(self, adapter: Adapter, number: PhoneNumber) -> CrmRecord:
        contact = self.server.add_contact(
            {"firstname": "Erika", "lastname": "Beispiel", "phone": number.e164}
        )
        return CrmRecord("contact", contact, (number.e164,), name="Erika Beispiel")

    def owner_id(self, adapter: Adapter) -> str:
        return ERIKA_OWNER

    def fail_next_write(self, adapter: Adapter, status: int, echo: str) -> bool:
        body = {"status": "error", "message": echo, "category": "VALIDATION_ERROR"}
        self.server.fail_next(r"/crm/v3/objects/calls(/batch/\w+)?$", status, body, method="POST")
        return True

    def lose_next_write_answer(self, adapter: Adapter) -> bool:
        self.server.lose_answer_after_commit(r"/crm/v3/objects/calls(/batch/\w+)?$", method="POST")
        return True

    def secrets(self, adapter: Adapter) -> list[str]:
        return [DEFAULT_TOKEN]


# ------------------------------------------------------------------------------------------
# Options
# ------------------------------------------------------------------------------------------


def test_options_have_documented_defaults() -> None:
    loaded = HubSpotAdapter.config_schema().load({"access_token": "pat-eu1-fictional"})
    assert loaded == HubSpotOptions(
        access_token="pat-eu1-fictional",
        base_url="https://api.hubapi.com",
        connect_timeout=5.0,
        read_timeout=30.0,
        rate_limit=RateLimitOptions(requests_per_10s=90, searches_per_second=4),
        rate_limit_store=None,
        associate_company=True,
        deal_rule="none",
        ticket=None,
        unique_call_property=None,
        call_id_property="hs_call_external_id",
        cache_seconds=300.0,
        portal_time_zone="UTC",
        required_properties=(),
    )


def test_options_reject_mistakes_and_accept_numeric_ids() -> None:
    schema = HubSpotAdapter.config_schema()
    with pytest.raises(ValidationError) as missing:
        schema.load({})
    assert "access_token" in missing.value.messages
    bad = {
        "deal_rule": "newest",
        "rate_limit_store": "postgres://x",
        "portal_time_zone": "Mars/Olympus",
        "rate_limit": {"requests_per_second": 5},
        "ticket": {"channels": []},
        "owners": {"w1": "77001"},  # the delivery policy's key, not an option
    }
    with pytest.raises(ValidationError) as caught:
        schema.load({"access_token": "t", **bad})
    assert set(caught.value.messages) == set(bad)
    loaded = schema.load(
        {
            "access_token": "t",
            "ticket": {"channels": ["Support", 4711], "pipeline": 0, "stage": 1},
            "rate_limit_store": "sqlite:///data/ratelimit.db",
        }
    )
    assert loaded.ticket is not None
    assert list(loaded.ticket.channels) == ["Support", "4711"]
    assert (loaded.ticket.pipeline, loaded.ticket.stage) == ("0", "1")


def test_association_ids_are_the_sdks() -> None:
    for (from_type, to_type), type_id in ASSOCIATION_TYPES.items():
        name = f"{from_type.removesuffix('s')}_to_{to_type.removesuffix('s')}".upper()
        assert getattr(AssociationType, name.replace("COMPANIE", "COMPANY")) == type_id


# ------------------------------------------------------------------------------------------
# Searching by phone number
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "stored"),
    [
        ("phone", "030 23125012"),
        ("phone", "+49 (30) 231250-12"),
        ("phone", "0049 30 23125012"),
        ("phone", "+493023125012"),
        ("mobilephone", "030 23125012"),
        ("mobilephone", "+49 30 23125012"),
    ],
)
def test_search_finds_a_contact_in_every_stored_format(
    server: HubSpotTestServer, adapter: HubSpotAdapter, field: str, stored: str
) -> None:
    contact = server.add_contact({"firstname": "Erika", "lastname": "Mustermann", field: stored})
    server.add_contact({"firstname": "Max", "phone": "030 23125099"})

    [record] = adapter.search_by_phone(CALLER, ["contact"])

    assert record.id == contact
    assert record.object_type == "contact"
    assert record.name == "Erika Mustermann"
    assert stored in record.phones
    assert any(same_number(p, CALLER, "DE") for p in record.phones)
    assert len(server.requests("POST", r"/contacts/search$")) == 1


def test_search_sends_one_request_with_the_four_documented_filter_groups(
    server: HubSpotTestServer, adapter: HubSpotAdapter
) -> None:
    adapter.search_by_phone(CALLER, ["contact"])
    [request] = server.requests("POST", r"/search$")
    groups = [g["filters"] for g in request.json["filterGroups"]]
    assert groups == [
        [{"propertyName": name, "operator": "EQ", "value": value}]
        for name, value in (
            ("hs_searchable_calculated_phone_number", "3023125012"),
            ("hs_searchable_calculated_mobile_number", "3023125012"),
            ("phone", "+493023125012"),
            ("mobilephone", "+493023125012"),
        )
    ]
    assert {"hubspot_owner_id", "associatedcompanyid", "hs_calculated_phone_number"} <= set(
        request.json["properties"]
    )
    assert adapter.describe_search(CALLER, ["contact"])["requests"] == [
        {"method": "POST", "path": "/crm/v3/objects/contacts/search", "body": request.json}
    ]


def test_a_name_search_sends_word_prefixes_only(
    server: HubSpotTestServer, adapter: HubSpotAdapter
) -> None:
    erika = server.add_contact({"firstname": "Erika", "lastname": "Mustermann"})
    server.add_contact({"firstname": "Max", "lastname": "Mustermann"})
    company = server.add_company({"name": "Mustermann Werkzeugbau GmbH"})

    found = adapter.search_by_name('"Muster* Erika"', ["contact", "company"])

    assert [(r.object_type, r.id) for r in found] == [("contact", erika)]
    contacts, companies = server.requests("POST", r"/search$")
    assert [g["filters"] for g in contacts.json["filterGroups"]] == [
        [
            {"propertyName": first, "operator": "CONTAINS_TOKEN", "value": "muster*"},
            {"propertyName": second, "operator": "CONTAINS_TOKEN", "value": "erika*"},
        ]
        for first, second in (
            ("firstname", "lastname"),
            ("lastname", "firstname"),
            ("lastname", "lastname"),
        )
    ]
    assert companies.json["filterGroups"] == [
        {
            "filters": [
                {"propertyName": "name", "operator": "CONTAINS_TOKEN", "value": "muster*"},
                {"propertyName": "name", "operator": "CONTAINS_TOKEN", "value": "erika*"},
            ]
        }
    ]
    assert [r.id for r in adapter.search_by_name("Werkzeug", ["company"])] == [company]
    assert adapter.search_by_name("* ?", ["contact"]) == []
    assert len(server.requests("POST", r"/search$")) == 3  # no words: no request


def test_same_national_number_of_another_country_is_found_but_rejected(
    server: HubSpotTestServer, adapter: HubSpotAdapter
) -> None:
    german = server.add_contact({"firstname": "Erika", "phone": "030 23125012"})
    austrian = server.add_contact({"firstname": "Anna", "phone": "+43 30 23125012"})

    found = {r.id: r for r in adapter.search_by_phone(CALLER, ["contact"])}

    # HubSpot compares national significant numbers only, so both come back ...
    assert set(found) == {german, austrian}
    # ... and the local re-check keeps the German one.
    kept = [i for i, r in found.items() if any(same_number(p, CALLER, "DE") for p in r.phones)]
    assert kept == [german]


def test_several_matches_and_no_match(server: HubSpotTestServer, adapter: HubSpotAdapter) -> None:
    first = server.add_contact({"firstname": "Erika", "phone": "030 23125012"})
    second = server.add_contact(
        {"firstname": "Max", "mobilephone": "+49 30 23125012", "hubspot_owner_id": MAX_OWNER}
    )
    records = adapter.search_by_phone(CALLER, ["contact"])
    assert {r.id for r in records} == {first, second}
    assert {r.id: r.owner_id for r in records}[second] == MAX_OWNER
    assert all(r.modified_at is not None for r in records)

    assert adapter.search_by_phone(OTHER, ["contact"]) == []
    assert adapter.search_by_phone(OTHER, ["contact"]) == []  # empty results are not cached
    assert len(server.requests("POST", r"/search$")) == 3


def test_companies_are_searched_only_without_a_certain_contact(
    server: HubSpotTestServer, adapter: HubSpotAdapter
) -> None:
    company = server.add_company({"name": "Beispiel GmbH", "phone": "+49 30 23125012"})
    foreign = server.add_contact({"firstname": "Anna", "phone": "+43 30 23125012"})
    # Only a contact of another country: the policy will reject it, so companies are searched.
    hits = adapter.search_by_phone(CALLER, ["contact", "company"])
    assert [(r.object_type, r.id) for r in hits] == [("contact", foreign), ("company", company)]
    assert len(server.requests("POST", r"/search$")) == 2

    erika = server.add_contact({"firstname": "Erika", "phone": "030 23125012"})
    server.clear_request_log()
    uncached = make(server, cache_seconds=0)
    hits = uncached.search_by_phone(CALLER, ["contact", "company"])
    # HubSpot itself reads Erika's number as the caller's: contacts win, no company search.
    assert {(r.object_type, r.id) for r in hits} == {("contact", foreign), ("contact", erika)}
    assert [r.path for r in server.request_log] == ["/crm/v3/objects/contacts/search"]


def test_companies_are_searched_by_phone(
    server: HubSpotTestServer, adapter: HubSpotAdapter
) -> None:
    company = server.add_company({"name": "Beispiel GmbH", "phone": "+49 30 23125012"})
    server.add_company({"name": "Andere AG", "phone": "+49 30 23125099"})
    records = adapter.search_by_phone(CALLER, ["contact", "company"])
    assert [(r.object_type, r.id, r.name) for r in records] == [
        ("company", company, "Beispiel GmbH")
    ]
    assert [r.path for r in server.requests("POST")] == [
        "/crm/v3/objects/contacts/search",
        "/crm/v3/objects/companies/search",
    ]
    with pytest.raises(PermanentError, match="deal"):
        adapter.search_by_phone(CALLER, ["deal"])


def test_a_repeat_caller_costs_no_search_until_the_cache_expires(
    server: HubSpotTestServer,
) -> None:
    server.add_contact({"firstname": "Erika", "phone": "030 23125012"})
    clock = ManualClock()
    adapter = HubSpotAdapter("hubspot-test", options(server, cache_seconds=300), cache_clock=clock)
    first = adapter.search_by_phone(CALLER, ["contact"])
    clock.advance(299)
    assert adapter.search_by_phone(CALLER, ["contact"]) == first
    assert len(server.requests("POST", r"/search$")) == 1
    clock.advance(2)
    assert adapter.search_by_phone(CALLER, ["contact"]) == first
    assert len(server.requests("POST", r"/search$")) == 2

    uncached = make(server, cache_seconds=0)
    uncached.search_by_phone(CALLER, ["contact"])
    uncached.search_by_phone(CALLER, ["contact"])
    assert len(server.requests("POST", r"/search$")) == 4


# ------------------------------------------------------------------------------------------
# Writing calls, tasks, notes, tickets
# ------------------------------------------------------------------------------------------


@pytest.fixture
def customer(server: HubSpotTestServer) -> dict[str, str]:
    """A contact with a company and two deals (one open, one won) on the caller's number."""
    company = server.add_company({"name": "Beispiel GmbH"})
    contact = server.add_contact(
        {
            "firstname": "Erika",
            "lastname": "Mustermann",
            "phone": "030 23125012",
            "associatedcompanyid": company,
            "hubspot_owner_id": ERIKA_OWNER,
        },
        associations=[("companies", company)],
    )
    won = server.add_deal({"dealname": "Altauftrag"}, contact_ids=[contact], dealstage="closedwon")
    open_deal = server.add_deal({"dealname": "Neuauftrag"}, contact_ids=[contact])
    return {"company": company, "contact": contact, "open_deal": open_deal, "won_deal": won}


def matched_job(adapter: HubSpotAdapter, call_id: str = "call-1", **changes: Any) -> DeliveryJob:
    report = example_report(call_id)
    report = replace(report, from_number=CALLER_DIGITS)
    job = DeliveryJob(
        report,
        fields={"hs_call_title": "Rechnungsfrage", "hs_call_body": "<p>Kurz</p>"},
        matches=tuple(adapter.search_by_phone(CALLER, ["contact"])),
        tasks=tasks("Tarifoptionen senden", "Rechnung prüfen"),
        owner_id=ERIKA_OWNER,
        remote=CALLER,
    )
    return replace(job, **changes)


def test_call_carries_every_owned_property_as_a_string(
    server: HubSpotTestServer, adapter: HubSpotAdapter, customer: dict[str, str]
) -> None:
    job = matched_job(adapter, fields={"hs_call_title": "Rückfrage", "hs_call_disposition": 42})

    result = adapter.write(job, Journal())

    [call] = server.objects("calls")
    assert result.refs["call"] == call["id"]
    assert {
        k: v
        for k, v in call["properties"].items()
        if not k.startswith(("hs_createdate", "hs_last"))
    } == {
        "hs_call_title": "Rückfrage",
        "hs_call_disposition": "42",
        "hs_timestamp": "2026-04-08T09:22:41.663Z",
        "hs_call_direction": "INBOUND",
        "hs_call_duration": "82666",
        "hs_call_from_number": "+493023125012",
        "hs_call_to_number": "+4921163553401",
        "hs_call_status": "COMPLETED",
        "hubspot_owner_id": ERIKA_OWNER,
        "hs_call_external_id": "call-1",
        "hs_object_id": call["id"],
    }
    assert server.non_string_property_values() == []


def test_outbound_call_and_withheld_number(
    server: HubSpotTestServer, adapter: HubSpotAdapter
) -> None:
    outbound = replace(example_report("call-out"), direction="OUT")
    adapter.write(DeliveryJob(outbound), Journal())
    adapter.write(DeliveryJob(minimal_report("call-anon")), Journal())
    [out] = calls_logged(server, "call-out")
    [anon] = calls_logged(server, "call-anon")
    assert out["properties"]["hs_call_direction"] == "OUTBOUND"
    assert anon["properties"]["hs_call_from_number"] == "anonymous"  # kept as sipgate sent it
    assert anon["properties"]["hs_call_to_number"] == "+4930123456789"
    assert server.associations("calls", anon["id"]) == []
    assert "hubspot_owner_id" not in anon["properties"]


def test_associations_are_created_with_hubspots_type_ids(
    server: HubSpotTestServer, customer: dict[str, str]
) -> None:
    adapter = make(
        server,
        deal_rule="most_recent_open",
        ticket={"channels": ["Support Channel"], "pipeline": "0", "stage": "1"},
    )
    job = matched_job(adapter, overflow="Kunde: Hallo <Team>!\n\nAgent: Guten Tag.")

    refs = adapter.write(job, Journal()).refs

    contact, company = customer["contact"], customer["company"]
    assert {
        (to_type, to_id, type_id)
        for to_type, to_id, type_id in edges(server, "calls", refs["call"])
    } >= {
        ("contacts", contact, 194),
        ("companies", company, 182),
        ("deals", customer["open_deal"], 206),
    }
    assert ("deals", customer["won_deal"], 206) not in edges(server, "calls", refs["call"])
    assert len(refs["tasks"]) == 2
    for task_id in refs["tasks"]:
        assert ("contacts", contact, 204) in edges(server, "tasks", task_id)
    assert ("contacts", contact, 202) in edges(server, "notes", refs["note"])
    assert ("contacts", contact, 16) in edges(server, "tickets", refs["ticket"])
    # HubSpot stores the inverse too: the contact's timeline shows the call (193).
    assert Association("contacts", contact, "calls", refs["call"], 193) in server.associations(
        "contacts", contact
    )

    note = server.get_object("notes", refs["note"])
    assert note is not None
    # The planner hands over plain text (the transcript); HubSpot bodies are HTML.
    assert note["properties"]["hs_note_body"] == (
        "<p>Kunde: Hallo &lt;Team&gt;!</p><p>Agent: Guten Tag.</p>"
    )
    ticket = server.get_object("tickets", refs["ticket"])
    assert ticket is not None
    assert ticket["properties"]["hs_pipeline"] == "0"
    assert ticket["properties"]["subject"] == "Invoice inquiry and plan change"


def test_an_overlong_transcript_note_is_cut_to_hubspots_limit(
    server: HubSpotTestServer, adapter: HubSpotAdapter
) -> None:
    transcript = "Kunde: <laut> & deutlich\n" * 3000  # 75,000 characters, more as HTML
    job = DeliveryJob(example_report("call-long"), overflow=transcript)
    refs = adapter.write(job, Journal()).refs
    note = server.get_object("notes", refs["note"])
    assert note is not None
    body = note["properties"]["hs_note_body"]
    assert 65_000 < len(body) <= 65_536
    assert body.startswith("<p>Kunde: &lt;laut&gt; &amp; deutlich<br>")
    assert body.endswith(" […]</p>")


def test_company_association_can_be_switched_off(
    server: HubSpotTestServer, customer: dict[str, str]
) -> None:
    adapter = make(server, associate_company=False)
    refs = adapter.write(matched_job(adapter), Journal()).refs
    assert {t for t, _, _ in edges(server, "calls", refs["call"])} == {"contacts"}


def test_tasks_are_created_in_one_batch_request(
    server: HubSpotTestServer, adapter: HubSpotAdapter, customer: dict[str, str]
) -> None:
    job = matched_job(
        adapter,
        tasks=(
            TaskSpec("Angebot senden", "Tarif <Plus>\nbis Freitag", date(2026, 4, 10), "high"),
            TaskSpec("Rückruf", "", date(2026, 4, 11), "low", MAX_OWNER),
        ),
    )
    refs = adapter.write(job, Journal()).refs

    [batch] = server.requests("POST", r"/tasks/batch/create$")
    assert len(batch.json["inputs"]) == 2
    stored = {t["properties"]["hs_task_subject"]: t["properties"] for t in server.objects("tasks")}
    assert set(refs["tasks"]) == {t["id"] for t in server.objects("tasks")}
    first, second = stored["Angebot senden"], stored["Rückruf"]
    assert first["hs_task_body"] == "<p>Tarif &lt;Plus&gt;<br>bis Freitag</p>"
    assert first["hs_timestamp"] == "2026-04-10T12:00:00Z"  # due date, noon UTC
    assert (first["hs_task_priority"], second["hs_task_priority"]) == ("HIGH", "LOW")
    assert first["hs_task_status"] == "NOT_STARTED" and first["hs_task_type"] == "TODO"
    assert (first["hubspot_owner_id"], second["hubspot_owner_id"]) == (ERIKA_OWNER, MAX_OWNER)


def test_a_matched_call_with_two_action_items_costs_three_requests(
    server: HubSpotTestServer, adapter: HubSpotAdapter, customer: dict[str, str]
) -> None:
    server.clear_request_log()
    job = matched_job(adapter)  # searches
    adapter.write(job, Journal())
    assert [(r.method, r.path) for r in server.request_log] == [
        ("POST", "/crm/v3/objects/contacts/search"),
        ("POST", "/crm/v3/objects/calls"),
        ("POST", "/crm/v3/objects/tasks/batch/create"),
    ]


def test_describe_write_lists_exactly_what_write_sends(
    server: HubSpotTestServer, customer: dict[str, str]
) -> None:
    adapter = make(server, ticket={"channels": ["4711"], "pipeline": "0", "stage": "1"})
    job = matched_job(adapter, overflow="<p>Mehr</p>")
    job = replace(job, report=replace(job.report, channel=Channel("4711", "Vertrieb")))
    server.clear_request_log()

    described = adapter.describe_write(job)
    assert server.request_log == []  # describing sends nothing

    adapter.write(job, Journal())
    sent = [(r.method, r.path, r.json) for r in server.request_log]
    assert sent == [(d["method"], d["path"], d["body"]) for d in described]


def test_a_repeated_delivery_sends_nothing_already_recorded(
    server: HubSpotTestServer, adapter: HubSpotAdapter, customer: dict[str, str]
) -> None:
    job = matched_job(adapter, overflow="<p>Mehr</p>")
    journal = Journal()
    first = adapter.write(job, journal)
    server.clear_request_log()
    again = adapter.write(job, Journal(journal.as_dict()))
    assert again.refs == first.refs
    assert server.request_log == []


def test_upsert_on_a_unique_call_property(
    server: HubSpotTestServer, customer: dict[str, str]
) -> None:
    server.add_property("calls", "sipgate_call_id", unique=True)
    adapter = make(server, unique_call_property="sipgate_call_id")
    job = matched_job(adapter)

    first = adapter.write(job, Journal())
    second = adapter.write(job, Journal())  # the journal was lost: upsert finds the call

    [call] = server.objects("calls")
    assert first.refs["call"] == second.refs["call"] == call["id"]
    assert call["properties"]["sipgate_call_id"] == "call-1"
    assert call["properties"]["hs_call_external_id"] == "call-1"
    assert {
        (t, i) for t, i, type_id in edges(server, "calls", call["id"]) if type_id in (194, 182)
    } == {
        ("contacts", customer["contact"]),
        ("companies", customer["company"]),
    }
    assert server.requests("POST", r"/crm/v3/objects/calls$") == []
    assert len(server.requests("POST", r"/calls/batch/upsert$")) == 2


# ------------------------------------------------------------------------------------------
# Faults, timeouts, unknown outcomes
# ------------------------------------------------------------------------------------------


def test_a_500_is_retryable_and_the_retry_logs_the_call_once(
    server: HubSpotTestServer, customer: dict[str, str]
) -> None:
    wall = ManualClock(MARCH_28_2230Z)
    adapter = HubSpotAdapter("hubspot-test", options(server), wall_clock=wall)
    job = matched_job(adapter)
    journal = Journal()
    server.fail_next(r"/crm/v3/objects/calls$", 500)

    with pytest.raises(RetryableError):
        adapter.write(job, journal)
    assert journal.get("call.pending") == MARCH_28_2230Z  # a 500 may have been applied

    # Right away, HubSpot's search might not show a call made by the failed attempt yet.
    with pytest.raises(RetryableError) as waiting:
        adapter.write(job, Journal(journal.as_dict()))
    assert waiting.value.retry_after == pytest.approx(PENDING_SETTLE_SECONDS)

    wall.advance(PENDING_SETTLE_SECONDS)
    adapter.write(job, journal)
    assert len(calls_logged(server, "call-1")) == 1
    assert len(server.requests("POST", r"/calls/search$")) == 2


def test_every_request_to_hubspot_is_counted_for_the_target_by_status(
    server: HubSpotTestServer, customer: dict[str, str]
) -> None:
    adapter = HubSpotAdapter("hubspot-counted", options(server))
    job = matched_job(adapter)
    journal = Journal()
    server.fail_next(r"/tasks/batch/create$", 429, headers={"Retry-After": "1"})
    with pytest.raises(RetryableError):
        adapter.write(job, journal)
    server.lose_answer_after_commit(r"/tasks/batch/create$", method="POST")
    with pytest.raises(RetryableError):
        adapter.write(job, journal)
    adapter.close()
    answered = [e.status for e in server.request_log if not e.lost]
    assert crm_requests("hubspot-counted") == {
        **logged_statuses(answered),
        "connection_error": 1,
    }
    assert crm_requests("hubspot-counted")["429"] == 1


def test_a_refused_and_a_timed_out_request_to_hubspot_have_their_status(
    server: HubSpotTestServer,
) -> None:
    refused = HubSpotAdapter("hubspot-refused", options(server, base_url="http://127.0.0.1:1"))
    with pytest.raises(RetryableError, match="Cannot connect"):
        refused.search_by_phone(CALLER, ["contact"])
    slow = HubSpotAdapter("hubspot-slow", options(server, read_timeout=0.3))
    server.delay_after_commit(r"/contacts/search$", 2.0)
    with pytest.raises(RetryableError):
        slow.search_by_phone(CALLER, ["contact"])
    assert crm_requests("hubspot-refused") == {"connection_error": 1}
    assert crm_requests("hubspot-slow") == {"timeout": 1}


def test_timeout_after_the_create_committed_finds_the_call_instead_of_duplicating(
    server: HubSpotTestServer, customer: dict[str, str]
) -> None:
    adapter = make(server, read_timeout=0.3)
    job = matched_job(adapter)
    journal = Journal()
    server.delay_after_commit(r"/crm/v3/objects/calls$", 2.0)

    with pytest.raises(RetryableError) as caught:
        adapter.write(job, journal)
    assert "did not answer" in str(caught.value)
    assert len(calls_logged(server, "call-1")) == 1  # HubSpot did create it
    assert journal.get("call") is None and journal.get("call.pending")

    refs = adapter.write(job, Journal(journal.as_dict())).refs

    [call] = calls_logged(server, "call-1")
    assert refs["call"] == call["id"]
    assert len(server.requests("POST", r"/crm/v3/objects/calls$")) == 1
    assert len(server.objects("tasks")) == 2


def test_an_unknown_outcome_waits_for_the_search_index_instead_of_duplicating(
    customer_free_lagging: tuple[HubSpotTestServer, ManualClock],
) -> None:
    server, clock = customer_free_lagging
    adapter = HubSpotAdapter("hubspot-test", options(server, read_timeout=0.3), wall_clock=clock)
    job = DeliveryJob(example_report("call-lag"))
    journal = Journal()
    server.delay_after_commit(r"/crm/v3/objects/calls$", 2.0)
    with pytest.raises(RetryableError):
        adapter.write(job, journal)

    clock.advance(20)  # the call exists but is not searchable for another 10 s
    with pytest.raises(RetryableError) as waiting:
        adapter.write(job, journal)
    assert waiting.value.retry_after == pytest.approx(PENDING_SETTLE_SECONDS - 20)
    clock.advance(10)
    adapter.write(job, journal)
    assert len(calls_logged(server, "call-lag")) == 1


@pytest.fixture
def customer_free_lagging() -> Iterator[tuple[HubSpotTestServer, ManualClock]]:
    clock = ManualClock(MARCH_28_2230Z)
    with start_server(search_lag_seconds=30.0, clock=clock) as running:
        yield running, clock


def test_timeout_of_the_task_batch_finds_the_tasks_on_retry(
    server: HubSpotTestServer, adapter: HubSpotAdapter, customer: dict[str, str]
) -> None:
    slow = make(server, read_timeout=0.3)
    job = matched_job(adapter)
    journal = Journal()
    server.delay_after_commit(r"/tasks/batch/create$", 2.0)
    with pytest.raises(RetryableError):
        slow.write(job, journal)
    refs = slow.write(job, journal).refs
    assert sorted(refs["tasks"]) == sorted(t["id"] for t in server.objects("tasks"))
    assert len(server.objects("tasks")) == 2


def test_connection_refused_is_retryable_and_creates_nothing(
    server: HubSpotTestServer,
) -> None:
    adapter = HubSpotAdapter(
        "hubspot-test",
        HubSpotAdapter.config_schema().load(
            {"access_token": DEFAULT_TOKEN, "base_url": "http://127.0.0.1:9", "connect_timeout": 1}
        ),
    )
    journal = Journal()
    with pytest.raises(RetryableError, match="Cannot connect"):
        adapter.write(DeliveryJob(example_report("call-x")), journal)
    assert journal.get("call.pending") is None  # nothing left: no lookup needed on retry


def test_429_ten_secondly_is_retryable_after_the_advertised_wait(
    server: HubSpotTestServer, adapter: HubSpotAdapter
) -> None:
    server.fail_next(r"/crm/v3/objects/calls$", 429)
    with pytest.raises(RetryableError) as plain:
        adapter.write(DeliveryJob(example_report("call-1")), Journal())
    assert plain.value.retry_after == 10.0
    assert not isinstance(plain.value, TargetParked)

    server.fail_next(r"/crm/v3/objects/calls$", 429, headers={"Retry-After": "3"})
    with pytest.raises(RetryableError) as told:
        adapter.write(DeliveryJob(example_report("call-1")), Journal())
    assert told.value.retry_after == 3.0
    assert server.objects("calls") == []


def test_search_429_without_policy_name_is_retryable_after_a_second(
    server: HubSpotTestServer,
) -> None:
    server.search_per_second_limit = 1
    adapter = make(server)
    adapter.search_by_phone(CALLER, ["contact"])
    with pytest.raises(RetryableError) as caught:
        adapter.search_by_phone(OTHER, ["contact"])
    assert caught.value.retry_after == 1.0


def test_daily_limit_parks_the_target_until_midnight_in_the_portal_time_zone(
    server: HubSpotTestServer,
) -> None:
    wall = ManualClock(MARCH_28_2230Z)  # 23:30 in Berlin (CET), DST starts that night
    adapter = HubSpotAdapter(
        "hubspot-test", options(server, portal_time_zone="Europe/Berlin"), wall_clock=wall
    )
    server.exhaust_daily()
    with pytest.raises(TargetParked) as parked:
        adapter.write(DeliveryJob(example_report("call-1")), Journal())
    assert parked.value.until == datetime(2026, 3, 28, 23, 1, tzinfo=UTC)

    # Past that midnight and still used up: the portal's zone is not Berlin; probe hourly.
    wall.advance(2 * 3600)
    with pytest.raises(TargetParked) as again:
        adapter.search_by_phone(CALLER, ["contact"])
    assert again.value.until == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_401_is_permanent_and_names_the_access_token(server: HubSpotTestServer) -> None:
    adapter = make(server, access_token="pat-eu1-ffffffff-fictional")
    with pytest.raises(PermanentError) as caught:
        adapter.write(DeliveryJob(example_report("call-1")), Journal())
    message = str(caught.value)
    assert "access token" in message and "401" in message
    assert "pat-eu1" not in message


def test_403_missing_scope_is_permanent_and_names_the_scope() -> None:
    token = "pat-eu1-11111111-fictional"
    running = start_server(tokens={token: ["crm.objects.contacts.read"]})
    try:
        adapter = make(running, access_token=token)
        with pytest.raises(PermanentError) as caught:
            adapter.write(DeliveryJob(example_report("call-1")), Journal())
        assert "crm.objects.contacts.write" in str(caught.value)
    finally:
        running.stop()


def test_rejected_values_are_permanent_without_personal_data(
    server: HubSpotTestServer, adapter: HubSpotAdapter
) -> None:
    server.fail_next(
        r"/crm/v3/objects/calls$",
        400,
        body={
            "status": "error",
            "category": "VALIDATION_ERROR",
            "message": "Number +49 30 23125012 of erika.mustermann@example.com is not valid",
        },
    )
    journal = Journal()
    with pytest.raises(PermanentError) as caught:
        adapter.write(DeliveryJob(example_report("call-1")), journal)
    message = str(caught.value)
    assert "VALIDATION_ERROR" in message
    assert "23125012" not in message and "erika" not in message and "012" not in message
    assert journal.get("call.pending") is None  # a 400 created nothing


def test_error_texts_keep_only_hubspots_category_codes_names_and_correlation_id(
    server: HubSpotTestServer, adapter: HubSpotAdapter
) -> None:
    """Finding 9: what goes to the ledger names the problem, but quotes no value."""
    problems = [
        {
            "isValid": False,
            "message": "Frau Erika Mustermann, 0171 5551234 was not one of the allowed options",
            "error": "INVALID_OPTION",
            "name": "hs_call_disposition",
        }
    ]
    server.fail_next(
        r"/crm/v3/objects/calls$",
        400,
        body={
            "status": "error",
            "category": "VALIDATION_ERROR",
            "correlationId": "7b3a1c2e-0d4f-4a5b-9c8d-1e2f3a4b5c6d",
            "message": "Property values were not valid: " + json.dumps(problems),
            "context": {"properties": ["Erika Mustermann"]},
            "errors": [
                {
                    "message": "Erika's value erika@example.com is taken",
                    "code": "CONFLICT",
                    "context": {"propertyName": ["sipgate_topics"]},
                }
            ],
        },
    )
    with pytest.raises(PermanentError) as caught:
        adapter.write(DeliveryJob(example_report("call-9")), Journal())
    message = str(caught.value)
    assert message == (
        "HubSpot creating the call: HTTP 400 (VALIDATION_ERROR; properties "
        "hs_call_disposition (INVALID_OPTION), sipgate_topics; codes CONFLICT; "
        "[properties, propertyName]; correlation id 7b3a1c2e-0d4f-4a5b-9c8d-1e2f3a4b5c6d)"
    )
    for secret in ("Erika", "Mustermann", "5551234", "0171", "example.com", "allowed"):
        assert secret not in message


def test_a_cached_match_deleted_in_hubspot_leads_to_a_fresh_search(
    server: HubSpotTestServer, adapter: HubSpotAdapter
) -> None:
    contact = server.add_contact({"firstname": "Erika", "phone": "030 23125012"})
    job = matched_job(adapter, tasks=())
    response = requests.delete(
        f"{server.url}/crm/v3/objects/contacts/{contact}",
        headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
        timeout=5,
    )
    assert response.status_code == 204

    with pytest.raises(RetryableError, match="no longer exists"):
        adapter.write(job, Journal())
    assert adapter.search_by_phone(CALLER, ["contact"]) == []  # searched again, not cached


# ------------------------------------------------------------------------------------------
# Contacts for unknown callers
# ------------------------------------------------------------------------------------------


def test_a_new_number_gets_one_contact_although_the_search_lags() -> None:
    clock = ManualClock()
    running = start_server(search_lag_seconds=600.0, clock=clock)
    try:
        memo = MemoryMemo()  # the ledger-backed memo all workers share
        first_worker, second_worker = make(running), make(running)
        first_worker.bind_memo(memo)
        second_worker.bind_memo(memo)

        assert first_worker.search_by_phone(CALLER, ["contact"]) == []
        created = first_worker.create_record(
            "contact", CALLER, {"firstname": "Unbekannt"}, Journal()
        )
        clock.advance(180)  # a second call three minutes later, on another worker
        assert second_worker.search_by_phone(CALLER, ["contact"]) == []
        again = second_worker.create_record(
            "contact", CALLER, {"firstname": "Unbekannt"}, Journal()
        )

        assert again.id == created.id
        [contact] = running.objects("contacts")
        assert contact["properties"]["phone"] == "+493023125012"
        assert contact["properties"]["firstname"] == "Unbekannt"
        assert "hs_marketable_status" not in contact["properties"]
        assert len(running.requests("POST", r"/crm/v3/objects/contacts$")) == 1
    finally:
        running.stop()


def test_while_a_contact_is_being_created_other_deliveries_wait_then_reuse_it(
    server: HubSpotTestServer,
) -> None:
    wall = ManualClock(MARCH_28_2230Z)
    memo = MemoryMemo()
    slow = HubSpotAdapter("hubspot-test", options(server, read_timeout=0.3), wall_clock=wall)
    other = HubSpotAdapter("hubspot-test", options(server), wall_clock=wall)
    slow.bind_memo(memo)
    other.bind_memo(memo)
    server.delay_after_commit(r"/crm/v3/objects/contacts$", 2.0)
    slow_journal = Journal()
    with pytest.raises(RetryableError):
        slow.create_record("contact", CALLER, {}, slow_journal)  # created, answer lost

    with pytest.raises(RetryableError, match="Another delivery") as caught:
        other.create_record("contact", CALLER, {}, Journal())
    assert caught.value.retry_after is not None and caught.value.retry_after <= 10

    # The delivery whose answer was lost finds its contact on the retry ...
    mine = slow.create_record("contact", CALLER, {}, slow_journal)
    # ... and the other delivery gets that contact too.
    theirs = other.create_record("contact", CALLER, {}, Journal())
    assert mine.id == theirs.id
    assert [c["id"] for c in server.objects("contacts")] == [mine.id]


def test_a_reservation_nobody_finished_is_taken_over(server: HubSpotTestServer) -> None:
    wall = ManualClock(MARCH_28_2230Z)
    memo = MemoryMemo()
    failing, other = (
        HubSpotAdapter("hubspot-test", options(server), wall_clock=wall) for _ in range(2)
    )
    failing.bind_memo(memo)
    other.bind_memo(memo)
    server.fail_next(r"/crm/v3/objects/contacts$", 502)  # outcome unknown; nothing created
    with pytest.raises(RetryableError):
        failing.create_record("contact", CALLER, {}, Journal())
    with pytest.raises(RetryableError, match="Another delivery"):
        other.create_record("contact", CALLER, {}, Journal())

    wall.advance(PENDING_SETTLE_SECONDS + 1)  # the failed worker never came back
    record = other.create_record("contact", CALLER, {}, Journal())
    assert [c["id"] for c in server.objects("contacts")] == [record.id]


def test_a_contact_recorded_in_the_journal_is_not_created_again(
    server: HubSpotTestServer, adapter: HubSpotAdapter
) -> None:
    journal = Journal()
    created = adapter.create_record("contact", CALLER, {}, journal)
    server.clear_request_log()
    assert adapter.create_record("contact", CALLER, {}, Journal(journal.as_dict())).id == created.id
    assert server.request_log == []
    # The new contact is a repeat caller's match without a search.
    assert [r.id for r in adapter.search_by_phone(CALLER, ["contact"])] == [created.id]
    assert server.request_log == []
    with pytest.raises(PermanentError):
        adapter.create_record("company", CALLER, {}, Journal())


def test_a_contact_deleted_in_hubspot_is_created_anew(
    server: HubSpotTestServer, adapter: HubSpotAdapter
) -> None:
    first = adapter.create_record("contact", CALLER, {}, Journal())
    requests.delete(
        f"{server.url}/crm/v3/objects/contacts/{first.id}",
        headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
        timeout=5,
    )
    second = adapter.create_record("contact", CALLER, {}, Journal())
    assert second.id != first.id
    assert [c["id"] for c in server.objects("contacts")] == [second.id]


# ------------------------------------------------------------------------------------------
# Preflight check and owners
# ------------------------------------------------------------------------------------------


def test_check_reports_one_line_per_problem(server: HubSpotTestServer) -> None:
    token = "pat-eu1-22222222-fictional"
    server.add_token(token, ["crm.objects.contacts.read", "crm.objects.contacts.write"])
    adapter = make(
        server,
        access_token=token,
        owners={"w1": ERIKA_OWNER, "w2": "99999", "w3": "nobody@example.com"},
        required_properties=["sipgate_topics"],
        deal_rule="most_recent_open",
    )
    problems = [r.message for r in adapter.check() if not r.ok]
    owners = re.compile(
        r"owners: cannot be checked: HubSpot reading an owner: HTTP 403 \(MISSING_SCOPES; .*"
        r"correlation id [0-9a-f-]{36}\): the access token lacks a permission for this: "
        r"missing crm.objects.owners.read\.$"
    )
    assert problems[::2] == [
        "The access token lacks the scope(s) crm.objects.owners.read, "
        "crm.objects.companies.read, crm.objects.deals.read: add them to the HubSpot app and "
        "update the token.",
        "HubSpot calls have no property 'sipgate_topics'.",
    ]
    # Without the owners scope no owner can be looked up: said once, not per owner.
    assert len(problems) == 3 and owners.match(problems[1]), problems[1]


def test_check_finds_unknown_owners_and_properties(server: HubSpotTestServer) -> None:
    adapter = make(
        server,
        owners={"w1": ERIKA_OWNER, "w2": "99999", "w3": "nobody@example.com", "w4": MAX_OWNER},
        required_properties=["sipgate_topics"],
        unique_call_property="hs_call_title",
    )
    problems = [r.message for r in adapter.check() if not r.ok]
    assert problems == [
        "owners.users.w2: HubSpot has no active owner 99999.",
        "owners.users.w3: HubSpot has no active owner with the e-mail no***@example.com.",
        "Call property 'hs_call_title' does not require unique values, so it cannot be "
        "unique_call_property.",
        "HubSpot calls have no property 'sipgate_topics'.",
    ]


def test_check_of_a_healthy_target_says_what_it_verified(server: HubSpotTestServer) -> None:
    adapter = make(server, owners={"w1": ERIKA_OWNER, "w2": "max.mustermann@example.com"})
    assert [(r.ok, r.message) for r in adapter.check()] == [
        (True, "Access token valid; all required scopes granted."),
        (True, "All 2 mapped owners exist in HubSpot."),
        (True, "Call properties present: hs_call_external_id."),
    ]


def test_check_with_a_rejected_token_stops_at_the_token(server: HubSpotTestServer) -> None:
    results = make(server, access_token="pat-eu1-ffffffff-fictional").check()
    assert len(results) == 1 and not results[0].ok
    assert "rejected the access token" in results[0].message


def test_resolve_owner_by_email_is_cached(
    server: HubSpotTestServer, adapter: HubSpotAdapter
) -> None:
    assert adapter.resolve_owner("Max.Mustermann@example.com") == MAX_OWNER
    assert adapter.resolve_owner("nobody@example.com") is None
    assert adapter.resolve_owner("max.mustermann@example.com") == MAX_OWNER
    assert adapter.resolve_owner("nobody@example.com") is None
    assert len(server.requests("GET", r"/owners/$")) == 2  # the planner asks for every call


def configured_target(server: HubSpotTestServer, tmp_path: Path, **entry: Any) -> TargetConfig:
    """A hubspot target loaded the way the service loads it (config file, shipped mapping)."""
    document = {
        "storage": {"url": f"sqlite:///{tmp_path / 'connector.db'}"},
        "queue": {"url": "memory://"},
        "targets": [
            {
                "name": "crm",
                "type": "hubspot",
                "access_token": DEFAULT_TOKEN,
                "base_url": server.url,
                **entry,
            }
        ],
    }
    return parse_config(document, "config.yaml", tmp_path).targets[0]


def test_from_config_checks_the_policys_owners_and_mapped_properties(
    server: HubSpotTestServer, tmp_path: Path
) -> None:
    # A limit applies to a mapped field only (check-config reports any other), so map it.
    (tmp_path / "mine.yaml").write_text(
        "fields: {hs_call_title: '{{ headline }}', sipgate_summary: '{{ summary }}'}\n"
    )
    target = configured_target(
        server,
        tmp_path,
        mapping="mine.yaml",
        owners={"users": {"1234567w0": ERIKA_OWNER}, "fallback": "nobody@example.com"},
        limits={"sipgate_summary": 500},
    )
    adapter = HubSpotAdapter.from_config(target)
    assert [r.message for r in adapter.check() if not r.ok] == [
        "owners.fallback: HubSpot has no active owner with the e-mail no***@example.com.",
        "HubSpot calls have no property 'sipgate_summary'.",
    ]
    server.add_property("calls", "sipgate_summary")
    server.add_owner("77003", "nobody@example.com")
    assert all(r.ok for r in adapter.check())


def test_check_refuses_a_mapped_constant_that_is_no_option_of_an_enumeration(
    server: HubSpotTestServer, tmp_path: Path
) -> None:
    server.add_property(
        "calls", "sipgate_sentiment", type="enumeration", options=["positive", "negative"]
    )
    server.add_property("calls", "sipgate_mood", type="enumeration", options=["calm", "angry"])
    mapping = tmp_path / "sentiment.yaml"
    mapping.write_text(
        "fields:\n"
        "  sipgate_sentiment: neutral\n"  # a constant HubSpot refuses on every call
        "  sipgate_mood: '{{ summary }}'\n",  # rendered per call: not checked here
        encoding="utf-8",
    )
    adapter = HubSpotAdapter.from_config(configured_target(server, tmp_path, mapping=str(mapping)))
    assert [r.message for r in adapter.check() if not r.ok] == [
        "Call property 'sipgate_sentiment' takes one of positive, negative; the mapping writes "
        "'neutral'.",
    ]
    # The check told the truth: the write is what HubSpot refuses.
    job = DeliveryJob(example_report("call-enum"), fields={"sipgate_sentiment": "neutral"})
    with pytest.raises(PermanentError, match="INVALID_OPTION"):
        adapter.write(job, Journal())

    mapping.write_text("fields:\n  sipgate_sentiment: positive\n", encoding="utf-8")
    fixed = configured_target(server, tmp_path, mapping=str(mapping))
    assert all(r.ok for r in HubSpotAdapter.from_config(fixed).check())


@pytest.mark.parametrize(
    ("pipeline", "stage", "problem"),
    [
        ("0", "2", None),
        ("7", "2", "ticket.pipeline: HubSpot has no ticket pipeline '7'."),
        ("0", "9", "ticket.stage: ticket pipeline '0' has no stage '9' (it has 1, 2, 3, 4)."),
    ],
)
def test_check_verifies_the_ticket_pipeline_and_stage(
    server: HubSpotTestServer, pipeline: str, stage: str, problem: str | None
) -> None:
    adapter = make(server, ticket={"channels": ["Support"], "pipeline": pipeline, "stage": stage})
    results = adapter.check()
    assert [r.message for r in results if not r.ok] == ([problem] if problem else [])
    if problem is None:
        assert f"Ticket pipeline '{pipeline}' has stage '{stage}'." in [r.message for r in results]


@pytest.mark.parametrize("transcript", ["full", "summary"])
def test_the_shipped_mapping_logs_a_matched_call_in_three_requests(
    server: HubSpotTestServer, tmp_path: Path, transcript: str
) -> None:
    contact = server.add_contact({"firstname": "Erika", "phone": "030 23125012"})
    target = configured_target(
        server,
        tmp_path,
        owners={"users": {"1234567w0": ERIKA_OWNER}},
        transcript=transcript,
    )
    adapter = HubSpotAdapter.from_config(target)
    report = replace(example_report("call-e2e"), from_number=CALLER_DIGITS)
    journal = Journal()
    server.clear_request_log()

    plan = plan_delivery(report, target.policy, adapter, journal)
    assert plan.job is not None
    refs = adapter.write(plan.job, journal).refs

    expected = [
        "/crm/v3/objects/contacts/search",  # contacts held the caller: no company search
        "/crm/v3/objects/calls",
        "/crm/v3/objects/tasks/batch/create",
    ]
    if transcript == "summary":
        expected.append("/crm/v3/objects/notes")  # the transcript goes to a note of its own
    assert [r.path for r in server.request_log] == expected
    call = server.get_object("calls", refs["call"])
    assert call is not None
    assert call["properties"]["hubspot_owner_id"] == ERIKA_OWNER
    assert call["properties"]["hs_call_title"] == "Invoice inquiry and plan change"
    in_body = "customer number" in call["properties"]["hs_call_body"]
    assert in_body == (transcript == "full")
    assert ("contacts", contact, 194) in edges(server, "calls", refs["call"])
    assert len(refs["tasks"]) == 2
    if transcript == "summary":
        note = server.get_object("notes", refs["note"])
        assert note is not None and note["properties"]["hs_note_body"].startswith("<p>")
    assert server.non_string_property_values() == []


# ------------------------------------------------------------------------------------------
# Rate limits: a storm of deliveries stays within the budget and loses nothing
# ------------------------------------------------------------------------------------------


def test_a_429_storm_stays_within_budget_and_logs_every_call_exactly_once() -> None:
    clock = ManualClock()
    running = start_server(ten_second_limit=10, search_per_second_limit=2, clock=clock)
    try:
        limiter = RateLimiter(
            {"general": Budget(10, 10.0), "search": Budget(2, 1.0)},  # exactly the server's
            MemorySlotStore(clock),
            namespace="storm",
            in_flight_seconds=100_000,
            max_wait=5.0,
            clock=clock,
            sleep=clock.advance,
        )
        adapter = HubSpotAdapter(
            "hubspot-test",
            options(running, cache_seconds=0),
            limiter=limiter,
            wall_clock=clock,
        )
        numbers: list[PhoneNumber] = []
        for n in range(3):
            number = parse_sipgate(f"4930231250{20 + n}")
            assert number is not None
            running.add_contact({"firstname": f"Kunde {n}", "phone": number.e164})
            numbers.append(number)

        pending: queue.Queue[tuple[str, Journal]] = queue.Queue()
        for n in range(24):
            pending.put((f"storm-{n}", Journal()))
        retries: list[float | None] = []
        done: list[str] = []
        lock = threading.Lock()

        def worker() -> None:
            while True:
                try:
                    call_id, journal = pending.get_nowait()
                except queue.Empty:
                    return
                number = numbers[int(call_id.split("-")[1]) % 3]
                try:
                    matches = tuple(adapter.search_by_phone(number, ["contact"]))
                    report = replace(example_report(call_id), from_number=number.digits())
                    job = DeliveryJob(report, matches=matches, tasks=tasks("Rückruf"))
                    adapter.write(job, journal)
                except RetryableError as exc:
                    with lock:
                        retries.append(exc.retry_after)
                    clock.advance(min(exc.retry_after or 1.0, 1.0))
                    pending.put((call_id, journal))  # the pipeline would retry it later
                else:
                    with lock:
                        done.append(call_id)

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert sorted(done) == sorted(f"storm-{n}" for n in range(24))
        assert retries, "the budget should have forced some deliveries to be retried"
        assert running.rate_limited_requests() == []
        for n in range(24):
            assert len(calls_logged(running, f"storm-{n}")) == 1
        assert len(running.objects("tasks")) == 24
    finally:
        running.stop()


def test_records_from_search_are_crm_records(
    server: HubSpotTestServer, adapter: HubSpotAdapter, customer: dict[str, str]
) -> None:
    [record] = adapter.search_by_phone(CALLER, ["contact"])
    assert isinstance(record, CrmRecord)
    assert record.parent_id == customer["company"]
    assert record.owner_id == ERIKA_OWNER
    assert record.modified_at is not None
    assert record.modified_at > datetime.now(UTC) - timedelta(minutes=5)


def test_workers_share_one_budget_through_the_configured_store(
    server: HubSpotTestServer, tmp_path: Path
) -> None:
    shared = {
        "rate_limit_store": f"sqlite:///{tmp_path / 'ratelimit.db'}",
        "rate_limit": {"requests_per_10s": 2, "searches_per_second": 100},
    }
    first, second = make(server, **shared), make(server, **shared)  # e.g. two processes
    first.resolve_owner("erika.mustermann@example.com")
    first.resolve_owner("max.mustermann@example.com")
    assert second.client.limiter.try_acquire("general") is None  # the budget is used up for both
    other_token = make(server, **shared, access_token="pat-eu1-33333333-fictional")
    assert other_token.client.limiter.try_acquire("general") is not None  # its own budget
    for adapter in (first, second, other_token):
        adapter.close()


def test_urllib3_does_not_retry_a_timed_out_request_behind_our_back(
    server: HubSpotTestServer,
) -> None:
    adapter = make(server, read_timeout=0.3)
    server.delay_after_commit(r"/crm/v3/owners/$", 1.0, count=None)
    with pytest.raises(RetryableError):
        adapter.resolve_owner("erika.mustermann@example.com")
    assert len(server.requests("GET", r"/owners/$")) == 1


def test_describe_write_in_upsert_mode(server: HubSpotTestServer, customer: dict[str, str]) -> None:
    server.add_property("calls", "sipgate_call_id", unique=True)
    adapter = make(server, unique_call_property="sipgate_call_id", deal_rule="most_recent_open")
    ops = adapter.describe_write(matched_job(adapter))
    assert [(o["op"], o["object"]) for o in ops] == [
        ("search", "deals"),
        ("upsert", "calls"),
        ("associate", "calls"),
        ("associate", "calls"),
        ("batch/create", "tasks"),
    ]
    [upsert_input] = ops[1]["body"]["inputs"]
    assert (upsert_input["idProperty"], upsert_input["id"]) == ("sipgate_call_id", "call-1")
    assert "sipgate_call_id" not in upsert_input["properties"]
    assert ops[2]["path"].endswith(f"/associations/contacts/{customer['contact']}")


def test_timeout_of_the_ticket_and_note_finds_them_on_retry(
    server: HubSpotTestServer, adapter: HubSpotAdapter, customer: dict[str, str]
) -> None:
    slow = make(
        server,
        read_timeout=0.3,
        ticket={"channels": ["Support Channel"], "pipeline": "0", "stage": "1"},
    )
    job = matched_job(adapter, tasks=(), overflow="Kunde: Hallo.")
    journal = Journal()
    server.delay_after_commit(r"/crm/v3/objects/(notes|tickets)$", 2.0, count=2)
    for _ in range(2):  # the note's answer is lost, then the ticket's
        with pytest.raises(RetryableError):
            slow.write(job, journal)
    refs = slow.write(job, journal).refs
    assert [t["id"] for t in server.objects("tickets")] == [refs["ticket"]]
    assert [n["id"] for n in server.objects("notes")] == [refs["note"]]


# ------------------------------------------------------------------------------------------
# Retries re-planned the way the pipeline does, and what a retry must not lose or duplicate
# ------------------------------------------------------------------------------------------

MATCH_CONTACTS_AND_COMPANIES = DeliveryPolicy(
    matching=MatchingPolicy(objects=("contact", "company")), transcript="off"
)


def replan(
    adapter: HubSpotAdapter, report: CallReport, policy: DeliveryPolicy, previous: Journal
) -> tuple[DeliveryJob, Journal]:
    """One attempt as the pipeline makes it: plan afresh, reusing only the journal."""
    journal = Journal(previous.as_dict())
    plan = plan_delivery(report, policy, adapter, journal)
    assert plan.job is not None
    return plan.job, journal


def from_caller(call_id: str) -> CallReport:
    return replace(example_report(call_id), from_number=CALLER_DIGITS)


def task_policy(subject: str, body: str = "{{ item }}") -> DeliveryPolicy:
    """Contacts matched; one task per action item with these templates; no note."""
    templates = make_environment()
    return DeliveryPolicy(
        matching=MatchingPolicy(objects=("contact",)),
        transcript="off",
        tasks=TaskPolicy(subject=templates.from_string(subject), body=templates.from_string(body)),
    )


@pytest.fixture
def wall() -> ManualClock:
    """Our wall clock, starting at the real time: HubSpot stamps creations with real time."""
    return ManualClock(time.time())


def test_a_replanned_retry_keeps_the_company_association(
    server: HubSpotTestServer, customer: dict[str, str]
) -> None:
    """Finding 1 (fixed in the core): the journal's match keeps the contact's company."""
    adapter = make(server)
    report = from_caller("call-r1")
    server.fail_next(r"/crm/v3/objects/calls$", 429)  # attempt 1 creates nothing
    job, journal = replan(adapter, report, MATCH_CONTACTS_AND_COMPANIES, Journal())
    with pytest.raises(RetryableError):
        adapter.write(job, journal)

    job, journal = replan(adapter, report, MATCH_CONTACTS_AND_COMPANIES, journal)
    refs = adapter.write(job, journal).refs

    assert {("contacts", customer["contact"], 194), ("companies", customer["company"], 182)} <= (
        edges(server, "calls", refs["call"])
    )


def test_a_stale_cached_match_is_searched_afresh_on_the_replanned_retry(
    server: HubSpotTestServer,
) -> None:
    """Finding 2: the retry that "searches again" must not reuse the journal's match."""
    contact = server.add_contact({"firstname": "Erika", "phone": "030 23125012"})
    adapter = make(server)
    adapter.search_by_phone(CALLER, ["contact"])  # an earlier call filled the cache
    requests.delete(
        f"{server.url}/crm/v3/objects/contacts/{contact}",
        headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
        timeout=5,
    )
    report = from_caller("call-stale")
    job, journal = replan(adapter, report, MATCH_CONTACTS_AND_COMPANIES, Journal())
    assert [m.id for m in job.matches] == [contact]
    with pytest.raises(RetryableError, match="no longer exists"):
        adapter.write(job, journal)
    assert journal.get("match") is None

    server.clear_request_log()
    job, journal = replan(adapter, report, MATCH_CONTACTS_AND_COMPANIES, journal)
    refs = adapter.write(job, journal).refs

    assert job.matches == ()
    assert server.requests("POST", r"/contacts/search$")  # searched afresh
    assert server.associations("calls", refs["call"]) == []
    assert journal.get("match") == {
        "status": "unmatched",
        "records": [],
        "candidates": 0,
        "rejected": 0,
    }


def test_tasks_of_a_lost_attempt_are_found_although_the_retry_renders_other_text(
    server: HubSpotTestServer, customer: dict[str, str], wall: ManualClock
) -> None:
    """Findings 3+4 (a): the lookup compares with what was sent, not with a new rendering."""
    adapter = HubSpotAdapter("hubspot-test", options(server, read_timeout=0.5), wall_clock=wall)
    report = from_caller("call-text")
    server.delay_after_commit(r"/tasks/batch/create$", 2.0)
    job, journal = replan(adapter, report, task_policy("Callback: {{ item }}"), Journal())
    with pytest.raises(RetryableError, match="did not answer"):
        adapter.write(job, journal)
    created = sorted(t["id"] for t in server.objects("tasks"))
    assert len(created) == 2  # HubSpot made them; the answer was lost
    pending = journal.get("tasks_pending")

    wall.advance(PENDING_SETTLE_SECONDS)  # nothing would stop a second batch now
    edited = task_policy("Call back: {{ item }}")  # the mapping was edited in between
    job, journal = replan(adapter, report, edited, journal)
    refs = adapter.write(job, journal).refs

    assert sorted(refs["tasks"]) == created
    assert len(server.objects("tasks")) == 2
    # The marker holds the time and one fingerprint per task sent: SHA-256, not the text.
    assert set(pending) == {"at", "sent"} and len(pending["sent"]) == 2
    assert all(re.fullmatch("[0-9a-f]{64}", f) for f in pending["sent"])


def test_an_unknown_task_batch_does_not_adopt_another_calls_tasks(
    server: HubSpotTestServer, customer: dict[str, str], wall: ManualClock
) -> None:
    """Findings 3+4 (b): the same subject on the same contact minutes earlier is not ours."""
    adapter = HubSpotAdapter("hubspot-test", options(server), wall_clock=wall)
    policy = task_policy("{{ item }}", "{{ call.start | datetime }}: {{ item }}")
    first = from_caller("call-A")
    second = replace(first, call_id="call-B", start_time=first.start_time + timedelta(minutes=3))
    job, journal = replan(adapter, first, policy, Journal())
    tasks_of_first = adapter.write(job, journal).refs["tasks"]

    server.fail_next(r"/tasks/batch/create$", 502)  # the second call's batch: nothing made
    job, journal = replan(adapter, second, policy, Journal())
    with pytest.raises(RetryableError):
        adapter.write(job, journal)
    job, journal = replan(adapter, second, policy, journal)
    with pytest.raises(RetryableError, match="unknown"):  # the first call's are no answer
        adapter.write(job, journal)

    wall.advance(PENDING_SETTLE_SECONDS)
    job, journal = replan(adapter, second, policy, journal)
    tasks_of_second = adapter.write(job, journal).refs["tasks"]

    assert len(tasks_of_second) == 2 and set(tasks_of_second).isdisjoint(tasks_of_first)
    assert len(server.objects("tasks")) == 4


def test_a_partly_found_task_batch_waits_then_creates_only_the_missing_tasks(
    server: HubSpotTestServer, customer: dict[str, str], wall: ManualClock
) -> None:
    """Findings 3+4: a batch counts as done only when all its fingerprints are found."""
    adapter = HubSpotAdapter("hubspot-test", options(server, read_timeout=0.5), wall_clock=wall)
    policy = task_policy("{{ item }}")
    report = from_caller("call-partly")
    server.delay_after_commit(r"/tasks/batch/create$", 2.0)
    job, journal = replan(adapter, report, policy, Journal())
    with pytest.raises(RetryableError):
        adapter.write(job, journal)
    kept, lost = server.objects("tasks")
    requests.delete(  # as if HubSpot had made only one of the two
        f"{server.url}/crm/v3/objects/tasks/{lost['id']}",
        headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
        timeout=5,
    )

    job, journal = replan(adapter, report, policy, journal)
    with pytest.raises(RetryableError, match="unknown"):  # the other may not be searchable yet
        adapter.write(job, journal)

    wall.advance(PENDING_SETTLE_SECONDS)
    server.clear_request_log()
    job, journal = replan(adapter, report, policy, journal)
    refs = adapter.write(job, journal).refs

    [batch] = server.requests("POST", r"/tasks/batch/create$")
    subjects = [i["properties"]["hs_task_subject"] for i in batch.json["inputs"]]
    assert subjects == [lost["properties"]["hs_task_subject"]]
    live = sorted(t["id"] for t in server.objects("tasks"))
    assert len(live) == 2 and kept["id"] in live
    assert sorted(refs["tasks"]) == live


def test_an_unknown_ticket_does_not_adopt_another_calls_ticket_with_the_same_subject(
    server: HubSpotTestServer, customer: dict[str, str], wall: ManualClock
) -> None:
    """Findings 3+4 for tickets: subject and content are compared, not the subject alone."""
    adapter = HubSpotAdapter(
        "hubspot-test",
        options(server, ticket={"channels": ["Support Channel"], "pipeline": "0", "stage": "1"}),
        wall_clock=wall,
    )
    first = from_caller("call-T1")
    second = replace(first, call_id="call-T2", summary="Another question entirely.")
    job, journal = replan(adapter, first, MATCH_CONTACTS_AND_COMPANIES, Journal())
    ticket_of_first = adapter.write(job, journal).refs["ticket"]

    server.fail_next(r"/crm/v3/objects/tickets$", 503)
    job, journal = replan(adapter, second, MATCH_CONTACTS_AND_COMPANIES, Journal())
    with pytest.raises(RetryableError):
        adapter.write(job, journal)
    wall.advance(PENDING_SETTLE_SECONDS)
    job, journal = replan(adapter, second, MATCH_CONTACTS_AND_COMPANIES, journal)
    ticket_of_second = adapter.write(job, journal).refs["ticket"]

    assert ticket_of_second != ticket_of_first
    assert len(server.objects("tickets")) == 2


def test_a_contact_in_the_memo_that_lost_the_number_is_not_reused(
    server: HubSpotTestServer,
) -> None:
    """Finding 5: the memo's number → contact is re-checked against the contact's numbers."""
    adapter = make(server)
    adapter.bind_memo(MemoryMemo())
    policy = DeliveryPolicy(
        matching=MatchingPolicy(objects=("contact",), on_no_match="create_contact"),
        transcript="off",
    )
    job, journal = replan(adapter, from_caller("call-m1"), policy, Journal())
    adapter.write(job, journal)
    [first] = job.matches
    response = requests.patch(  # a user corrects the number: it was someone else's
        f"{server.url}/crm/v3/objects/contacts/{first.id}",
        json={"properties": {"phone": "+43 1 5551234"}},
        headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
        timeout=5,
    )
    assert response.status_code == 200
    adapter.searcher.cache.forget([first.id])  # the cache expired

    job, journal = replan(adapter, from_caller("call-m2"), policy, Journal())
    refs = adapter.write(job, journal).refs

    [second] = job.matches
    assert second.id != first.id
    phones = {c["id"]: c["properties"]["phone"] for c in server.objects("contacts")}
    assert phones == {first.id: "+43 1 5551234", second.id: "+493023125012"}
    assert edges(server, "calls", refs["call"]) == {("contacts", second.id, 194)}
    # The memo now names the new contact: a third call reuses it without creating another.
    adapter.searcher.cache.forget([second.id])
    job, journal = replan(adapter, from_caller("call-m3"), policy, Journal())
    assert [m.id for m in job.matches] == [second.id]
    assert len(server.objects("contacts")) == 2


def test_a_daily_limit_used_up_again_on_a_later_day_parks_until_the_next_midnight(
    server: HubSpotTestServer,
) -> None:
    """Finding 6: "hourly" only shortly after the expected reset, not a day later."""
    wall = ManualClock(datetime(2026, 3, 10, 15, 0, tzinfo=UTC).timestamp())
    adapter = HubSpotAdapter(
        "hubspot-test", options(server, portal_time_zone="Europe/Berlin"), wall_clock=wall
    )
    server.exhaust_daily()
    with pytest.raises(TargetParked) as first:
        adapter.write(DeliveryJob(example_report("call-d1")), Journal())
    assert first.value.until == datetime(2026, 3, 10, 23, 1, tzinfo=UTC)

    wall.advance(9.5 * 3600)  # 00:30 UTC: HubSpot did reset at midnight
    server.reset_daily()
    adapter.write(DeliveryJob(example_report("call-d2")), Journal())

    wall.advance(15 * 3600)  # 15:30 UTC: used up again
    server.exhaust_daily()
    with pytest.raises(TargetParked) as again:
        adapter.write(DeliveryJob(example_report("call-d3")), Journal())
    assert again.value.until == datetime(2026, 3, 11, 23, 1, tzinfo=UTC)
    assert "resets at midnight (Europe/Berlin)" in str(again.value)


def test_with_a_wrong_portal_time_zone_the_daily_limit_is_probed_hourly_until_it_resets(
    server: HubSpotTestServer,
) -> None:
    """The hourly probes go on while each finds the limit still used up, however many."""
    wall = ManualClock(datetime(2026, 3, 10, 15, 0, tzinfo=UTC).timestamp())
    adapter = HubSpotAdapter(
        "hubspot-test", options(server, portal_time_zone="Europe/Berlin"), wall_clock=wall
    )
    server.exhaust_daily()  # the portal is in New York: it resets at 04:00 UTC
    with pytest.raises(TargetParked) as parked:
        adapter.write(DeliveryJob(example_report("call-ny")), Journal())
    for _ in range(4):  # 23:01, 00:02, 01:03, 02:04 UTC
        wall.advance(parked.value.until.timestamp() + 60 - wall())
        with pytest.raises(TargetParked) as parked:
            adapter.write(DeliveryJob(example_report("call-ny")), Journal())
        assert "hourly" in str(parked.value)
        assert parked.value.until == datetime.fromtimestamp(wall() + 3600, UTC)


@pytest.mark.parametrize(
    ("status", "category", "headers", "wait"),
    [
        (423, "LOCKED", {}, 2.0),
        (423, "LOCKED", {"Retry-After": "1"}, 2.0),  # HubSpot: at least 2 seconds
        (423, "LOCKED", {"Retry-After": "7"}, 7.0),
        (477, "MIGRATION_IN_PROGRESS", {"Retry-After": "120"}, 120.0),
        (477, "MIGRATION_IN_PROGRESS", {}, 60.0),
    ],
)
def test_locked_and_migration_in_progress_are_retried_and_created_nothing(
    server: HubSpotTestServer,
    adapter: HubSpotAdapter,
    status: int,
    category: str,
    headers: dict[str, str],
    wait: float,
) -> None:
    """Finding 7: 423 and 477 are temporary, and HubSpot applied nothing."""
    body = {"status": "error", "message": "busy", "category": category}
    server.fail_next(r"/crm/v3/objects/calls$", status, body=body, headers=headers)
    journal = Journal()
    job = DeliveryJob(example_report(f"call-{status}"))
    with pytest.raises(RetryableError) as caught:
        adapter.write(job, journal)
    assert not isinstance(caught.value, TargetParked)
    assert caught.value.retry_after == wait
    assert journal.get("call.pending") is None  # no lookup needed, no wait
    adapter.write(job, journal)
    assert len(calls_logged(server, f"call-{status}")) == 1


def test_a_long_migration_in_progress_parks_the_target(server: HubSpotTestServer) -> None:
    """Finding 7: a 477 with a long Retry-After parks the target instead of one delivery."""
    wall = ManualClock(MARCH_28_2230Z)
    adapter = HubSpotAdapter("hubspot-test", options(server), wall_clock=wall)
    body = {"status": "error", "message": "moving", "category": "MIGRATION_IN_PROGRESS"}
    server.fail_next(r"/crm/v3/objects/calls$", 477, body=body, headers={"Retry-After": "3600"})
    with pytest.raises(TargetParked) as parked:
        adapter.write(DeliveryJob(example_report("call-477")), Journal())
    assert parked.value.until == datetime.fromtimestamp(MARCH_28_2230Z + 3600, UTC)


def test_408_is_retried_after_a_lookup(server: HubSpotTestServer) -> None:
    """Finding 7: a request timeout is temporary; whether it was applied is not known."""
    wall = ManualClock(MARCH_28_2230Z)
    adapter = HubSpotAdapter("hubspot-test", options(server), wall_clock=wall)
    server.fail_next(r"/crm/v3/objects/calls$", 408)
    journal = Journal()
    job = DeliveryJob(example_report("call-408"))
    with pytest.raises(RetryableError):
        adapter.write(job, journal)
    assert journal.get("call.pending") == MARCH_28_2230Z
    wall.advance(PENDING_SETTLE_SECONDS)
    adapter.write(job, journal)
    assert len(calls_logged(server, "call-408")) == 1


class RefusingLimiter(RateLimiter):
    """A limiter that refuses the budgets named in `refused` (no request is sent)."""

    def __init__(self) -> None:
        budgets = {"general": Budget(100_000, 10.0), "search": Budget(100_000, 1.0)}
        super().__init__(budgets, MemorySlotStore(), namespace="refusing")
        self.refused: set[str] = set()

    def acquire(self, kind: str) -> Any:
        if kind in self.refused:
            raise RetryableError("No request slot free.", retry_after=3.0)
        return super().acquire(kind)


def test_a_create_the_limiter_refuses_keeps_an_earlier_unknown_outcome(
    server: HubSpotTestServer,
) -> None:
    """Finding 8: only a marker this attempt set may be cleared."""
    wall = ManualClock(MARCH_28_2230Z)
    limiter = RefusingLimiter()
    adapter = HubSpotAdapter("hubspot-test", options(server), limiter=limiter, wall_clock=wall)
    job = DeliveryJob(example_report("call-8"))
    server.fail_next(r"/crm/v3/objects/calls$", 502)  # outcome unknown
    journal = Journal()
    with pytest.raises(RetryableError):
        adapter.write(job, journal)
    assert journal.get("call.pending") == MARCH_28_2230Z

    wall.advance(PENDING_SETTLE_SECONDS)
    limiter.refused = {"general"}
    with pytest.raises(RetryableError, match="No request slot"):
        adapter.write(job, journal)
    assert journal.get("call.pending") == MARCH_28_2230Z  # the next attempt looks up again


def test_a_429_on_the_next_try_keeps_the_lookup_for_a_lost_batch(wall: ManualClock) -> None:
    """Finding 8: a rejected create restores the earlier attempt's marker, so a later attempt
    still finds what that attempt made once HubSpot's search shows it."""
    running = start_server(search_lag_seconds=90.0, clock=wall)
    try:
        running.add_contact({"firstname": "Erika", "phone": "030 23125012"})
        adapter = HubSpotAdapter(
            "hubspot-test", options(running, read_timeout=0.5), wall_clock=wall
        )
        policy = task_policy("{{ item }}")
        report = from_caller("call-lag-429")
        running.delay_after_commit(r"/tasks/batch/create$", 2.0)
        job, journal = replan(adapter, report, policy, Journal())
        with pytest.raises(RetryableError):
            adapter.write(job, journal)  # made, answer lost; searchable in 90 s
        marker = journal.get("tasks_pending")

        wall.advance(PENDING_SETTLE_SECONDS + 1)  # the lookup finds nothing yet and is trusted
        running.fail_next(r"/tasks/batch/create$", 429)
        job, journal = replan(adapter, report, policy, journal)
        with pytest.raises(RetryableError, match="rate limit"):
            adapter.write(job, journal)
        assert journal.get("tasks_pending") == marker

        wall.advance(30)  # now HubSpot's search shows the tasks
        job, journal = replan(adapter, report, policy, journal)
        refs = adapter.write(job, journal).refs
        assert sorted(refs["tasks"]) == sorted(t["id"] for t in running.objects("tasks"))
        assert len(running.objects("tasks")) == 2
    finally:
        running.stop()


@pytest.mark.parametrize(
    ("status", "body"),
    [(200, "<html>proxy page</html>"), (201, "<html>proxy page</html>"), (201, "{}")],
)
def test_a_create_answer_that_cannot_be_read_is_an_unknown_outcome(
    server: HubSpotTestServer, status: int, body: str
) -> None:
    """Finding 10: a 2xx the SDK cannot decode may have been applied: look up, then retry."""
    wall = ManualClock(MARCH_28_2230Z)
    adapter = HubSpotAdapter("hubspot-test", options(server), wall_clock=wall)
    job = DeliveryJob(example_report("call-garbled"))
    server.fail_next(r"/crm/v3/objects/calls$", status, body=body)
    journal = Journal()
    with pytest.raises(RetryableError, match="could not be read"):
        adapter.write(job, journal)
    assert journal.get("call") is None and journal.get("call.pending") == MARCH_28_2230Z

    wall.advance(PENDING_SETTLE_SECONDS)
    refs = adapter.write(job, journal).refs
    [call] = calls_logged(server, "call-garbled")
    assert refs["call"] == call["id"]


def test_a_search_answer_that_cannot_be_read_is_no_empty_result(
    server: HubSpotTestServer, adapter: HubSpotAdapter
) -> None:
    """Finding 10: an undecodable search answer must not read as "no record has the number"."""
    contact = server.add_contact({"firstname": "Erika", "phone": "030 23125012"})
    server.fail_next(r"/contacts/search$", 200, body="<html>proxy page</html>")
    with pytest.raises(RetryableError, match="could not be read"):
        adapter.search_by_phone(CALLER, ["contact"])
    assert [r.id for r in adapter.search_by_phone(CALLER, ["contact"])] == [contact]


def test_call_duration_is_whole_milliseconds(
    server: HubSpotTestServer, adapter: HubSpotAdapter
) -> None:
    """Finding 11: 1.001 s is 1001 ms, not int(1.001 * 1000) = 1000."""
    report = replace(example_report("call-ms"), duration=timedelta(milliseconds=1001))
    refs = adapter.write(DeliveryJob(report), Journal()).refs
    call = server.get_object("calls", refs["call"])
    assert call is not None and call["properties"]["hs_call_duration"] == "1001"


def test_more_than_100_action_items_become_tasks_in_batches_of_100() -> None:
    """Finding 12: every action item becomes a task; each batch is recorded on its own."""
    clock = ManualClock()
    running = start_server(ten_second_limit=2, clock=clock)  # the 2nd batch gets a 429
    try:
        running.add_contact({"firstname": "Erika", "phone": "030 23125012"})
        adapter = make(running)
        job = matched_job(adapter, tasks=tasks(*(f"Punkt {n}" for n in range(150))))
        journal = Journal()
        with pytest.raises(RetryableError, match="rate limit"):
            adapter.write(job, journal)  # the call and the first 100 tasks are written
        assert len(journal.get("tasks_1")) == 100 and journal.get("tasks") is None

        clock.advance(10)
        refs = adapter.write(job, journal).refs

        sizes = [len(r.json["inputs"]) for r in running.requests("POST", r"/batch/create$")]
        assert sizes == [100, 50, 50]  # the first batch was not sent again
        subjects = sorted(t["properties"]["hs_task_subject"] for t in running.objects("tasks"))
        assert subjects == sorted(f"Punkt {n}" for n in range(150))
        assert sorted(refs["tasks"]) == sorted(t["id"] for t in running.objects("tasks"))
        assert [d["body"]["inputs"] for d in adapter.describe_write(job)[1:]] == [
            [t.body() for t in adapter.records.task_creates(job)[:100]],
            [t.body() for t in adapter.records.task_creates(job)[100:]],
        ]
    finally:
        running.stop()


def test_check_requires_the_companies_scope_when_the_policy_matches_companies(
    server: HubSpotTestServer, tmp_path: Path
) -> None:
    """Finding 13: searching companies needs their read scope, associated or not."""
    token = "pat-eu1-44444444-fictional"
    server.add_token(
        token,
        ["crm.objects.contacts.read", "crm.objects.contacts.write", "crm.objects.owners.read"],
    )
    matching_companies = configured_target(
        server, tmp_path, access_token=token, associate_company=False
    )  # the shipped mapping matches contacts, then companies
    assert "company" in matching_companies.policy.matching.objects
    problems = [r.message for r in HubSpotAdapter.from_config(matching_companies).check()]
    assert problems[0] == (
        "The access token lacks the scope(s) crm.objects.companies.read: add them to the "
        "HubSpot app and update the token."
    )

    contacts_only = configured_target(
        server,
        tmp_path,
        access_token=token,
        associate_company=False,
        matching={"objects": ["contact"]},
    )
    results = HubSpotAdapter.from_config(contacts_only).check()
    assert results[0].message == "Access token valid; all required scopes granted."
