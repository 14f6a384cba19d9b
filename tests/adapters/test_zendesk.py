"""The Zendesk target over real HTTP against the stateful Zendesk test server.

All people and numbers are fictional: +49 30 1234567xx, Erika and Max Mustermann at example.com.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from marshmallow import ValidationError

from connector.adapters import (
    Adapter,
    CrmRecord,
    DeliveryJob,
    Journal,
    MemoryMemo,
    OutcomeUnknown,
    PermanentError,
    PhoneNumber,
    RetryableError,
    User,
)
from connector.adapters.zendesk import (
    ZendeskAdapter,
    ZendeskOptions,
    caller_external_id,
    phone_queries,
    tag_for,
)
from connector.cli import main
from connector.config.policy import Defaults, TargetAbilities, load_policy
from connector.delivery.planning import plan_delivery
from connector.phone import parse_sipgate, parse_stored
from connector.testing import AdapterContract, example_report, minimal_report
from tests.fakes.base import ManualClock
from tests.fakes.zendesk_server import AGENT_EMAIL, API_TOKEN, ZendeskTestServer
from tests.support.metrics import crm_requests, logged_statuses

CALLER = parse_sipgate("493012345670")
assert CALLER is not None
OTHER_COUNTRY = "+43 30 12345670"  # the same national digits in Austria


@pytest.fixture
def server() -> Iterator[ZendeskTestServer]:
    with ZendeskTestServer() as running:
        yield running


def options(server: ZendeskTestServer, **extra: Any) -> ZendeskOptions:
    document: dict[str, Any] = {
        "email": AGENT_EMAIL,
        "api_token": API_TOKEN,
        "url": server.url,
        "connect_timeout": 2,
        "read_timeout": 5,
        "requests_per_minute": 100_000,
    }
    document.update(extra)
    loaded: ZendeskOptions = ZendeskAdapter.config_schema().load(document)
    return loaded


def make(server: ZendeskTestServer, **extra: Any) -> ZendeskAdapter:
    return ZendeskAdapter("zendesk-test", options(server, **extra))


@pytest.fixture
def adapter(server: ZendeskTestServer) -> Iterator[ZendeskAdapter]:
    made = make(server)
    yield made
    made.close()


def tickets_for(server: ZendeskTestServer, call_id: str) -> list[dict[str, Any]]:
    return [t for t in server.tickets() if t["external_id"] == call_id]


def job_for(
    adapter: ZendeskAdapter, call_id: str, matches: tuple[CrmRecord, ...] = (), **changes: Any
) -> DeliveryJob:
    """The example call as the planner makes it with the shipped mapping."""
    report = replace(example_report(call_id), **changes)
    return DeliveryJob(
        report,
        fields={"subject": report.headline, "comment": "<p>Summary</p>"},
        matches=matches,
        remote=CALLER,
    )


# ------------------------------------------------------------------------------------------
# The contract every adapter passes
# ------------------------------------------------------------------------------------------


class TestZendeskContract(AdapterContract):
    type_name = "zendesk"

    @pytest.fixture(autouse=True)
    def _running_server(self, server: ZendeskTestServer) -> None:
        self.server = server

    def make_adapter(self, tmp_path: Path) -> Adapter:
        return make(self.server)

    def make_unreachable_adapter(self, tmp_path: Path) -> Adapter:
        return make(self.server, url="http://127.0.0.1:1")

    def count_logged_calls(self, adapter: Adapter, call_id: str) -> int:
        return len(tickets_for(self.server, call_id))

    def add_record(self, adapter: Adapter, number: PhoneNumber) -> CrmRecord:
        user = self.server.add_user("Erika Beispiel", phone=number.e164)
        return CrmRecord("contact", user, (number.e164,), name="Erika Beispiel")

    def owner_id(self, adapter: Adapter) -> str:
        return self.server.add_user("Max Mustermann", email="max@example.com", role="agent")

    def fail_next_write(self, adapter: Adapter, status: int, echo: str) -> bool:
        body = {
            "error": "RecordInvalid",
            "description": echo,
            "details": {"requester": [{"description": echo, "error": "InvalidValue"}]},
        }
        self.server.fail_next(r"/api/v2/tickets\.json$", status, body, method="POST")
        return True

    def lose_next_write_answer(self, adapter: Adapter) -> bool:
        self.server.drop_next_answer(r"/api/v2/tickets\.json$", method="POST")
        return True

    def secrets(self, adapter: Adapter) -> list[str]:
        return [API_TOKEN, AGENT_EMAIL]


# ------------------------------------------------------------------------------------------
# Options
# ------------------------------------------------------------------------------------------


def test_options_defaults_and_the_account_from_subdomain_or_url() -> None:
    schema = ZendeskAdapter.config_schema()
    loaded = schema.load({"email": AGENT_EMAIL, "api_token": "t", "subdomain": "acme"})
    assert loaded.base_url == "https://acme.zendesk.com"
    assert (loaded.ticket_status, loaded.priority, loaded.tags) == ("new", None, ())
    assert dict(loaded.group_map) == {} and loaded.requests_per_minute == 200
    by_url = schema.load({"email": AGENT_EMAIL, "api_token": "t", "url": "http://127.0.0.1:9/"})
    assert by_url.base_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    "bad",
    [
        {},  # neither subdomain nor url
        {"subdomain": "acme", "url": "https://acme.zendesk.com"},  # both
        {"subdomain": "Acme Corp"},
        {"subdomain": "acme", "ticket_status": "closed"},
        {"subdomain": "acme", "priority": "asap"},
        {"subdomain": "acme", "group_map": {"1234567w0": None}},
        {"subdomain": "acme", "owners": {"w1": "x"}},  # the policy's key, not an option
    ],
)
def test_options_reject_mistakes(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ZendeskAdapter.config_schema().load({"email": AGENT_EMAIL, "api_token": "t", **bad})


def test_map_values_may_be_numbers() -> None:
    loaded = ZendeskAdapter.config_schema().load(
        {
            "email": AGENT_EMAIL,
            "api_token": "t",
            "subdomain": "acme",
            "group_map": {"1234567w0": 5100000001},
            "assignee_map": {"1234567w0": "agent@example.com"},
        }
    )
    assert dict(loaded.group_map) == {"1234567w0": "5100000001"}


# ------------------------------------------------------------------------------------------
# Requester by phone
# ------------------------------------------------------------------------------------------


def test_phone_queries_are_digits_most_specific_first() -> None:
    assert phone_queries(CALLER) == ["phone:493012345670", "phone:*3012345670"]


@pytest.mark.parametrize(
    "stored", ["+49 30 12345670", "030 12345670", "+49 (30) 123456-70", "0049 30 12345670"]
)
def test_users_are_found_whatever_the_stored_format(
    server: ZendeskTestServer, adapter: ZendeskAdapter, stored: str
) -> None:
    user = server.add_user("Erika Mustermann", phone=stored)
    found = adapter.search_by_phone(CALLER, ("contact",))
    assert [r.id for r in found] == [user]
    assert found[0].phones == (stored,) and found[0].object_type == "contact"


def test_the_search_stops_at_the_first_spelling_that_finds_the_caller(
    server: ZendeskTestServer, adapter: ZendeskAdapter
) -> None:
    server.add_user("Erika Mustermann", phone="+493012345670")
    adapter.search_by_phone(CALLER, ("contact",))
    assert [r.query["query"] for r in server.requests("GET", "users/search")] == [
        ["phone:493012345670"]
    ]


def test_another_countrys_number_is_found_by_the_wildcard_but_not_matched(
    server: ZendeskTestServer, adapter: ZendeskAdapter
) -> None:
    server.add_user("Max Mustermann", phone=OTHER_COUNTRY)
    found = adapter.search_by_phone(CALLER, ("contact",))
    assert len(found) == 1  # the wildcard finds it; the policy's re-check must drop it
    assert len(server.requests("GET", "users/search")) == 2
    policy = shipped_policy()
    plan = plan_delivery(
        replace(example_report("zd-other-1"), from_number=CALLER.digits()),
        policy,
        adapter,
        Journal(),
        create=False,
    )
    assert plan.job is not None
    assert [m.id for m in plan.job.matches] == ["(new)"]  # not the Austrian user


def shipped_policy(**overrides: Any) -> Any:
    problems: list[Any] = []
    policy = load_policy(
        overrides,
        "targets[0]",
        "config.yaml",
        Path.cwd(),
        Defaults(),
        TargetAbilities(ZendeskAdapter.searchable_objects, ZendeskAdapter.creatable_objects),
        problems,
        ZendeskAdapter.default_mapping,
    )
    assert policy is not None, problems
    return policy


def test_of_several_users_the_most_recently_updated_is_the_requester(
    server: ZendeskTestServer, adapter: ZendeskAdapter
) -> None:
    now = time.time()
    server.add_user("Erika Mustermann", phone="030 12345670", updated_at=now - 86_400)
    newer = server.add_user("Max Mustermann", phone="+49 30 12345670", updated_at=now)
    report = replace(example_report("zd-tie-1"), from_number=CALLER.digits())
    plan = plan_delivery(report, shipped_policy(), adapter, Journal())
    assert plan.job is not None
    adapter.write(plan.job, Journal())
    [ticket] = tickets_for(server, "zd-tie-1")
    assert str(ticket["requester_id"]) == newer


# ------------------------------------------------------------------------------------------
# The ticket
# ------------------------------------------------------------------------------------------


def test_the_ticket_carries_subject_private_note_tags_and_requester(
    server: ZendeskTestServer,
) -> None:
    adapter = make(server, tags=["sipgate", "Phone Call"], ticket_status="open", priority="high")
    user = server.add_user("Erika Mustermann", phone="+49 30 12345670")
    report = replace(example_report("zd-ticket-1"), from_number=CALLER.digits())
    plan = plan_delivery(report, shipped_policy(), adapter, Journal())
    assert plan.job is not None
    refs = adapter.write(plan.job, Journal()).refs
    [ticket] = tickets_for(server, "zd-ticket-1")
    assert refs == {"ticket": str(ticket["id"]), "requester": user}
    assert ticket["subject"] == "Invoice inquiry and plan change"
    assert str(ticket["requester_id"]) == user
    assert (ticket["status"], ticket["priority"]) == ("open", "high")
    assert ticket["tags"] == [
        "invoice",
        "additional_package",
        "plan_change",
        "sipgate",
        "phone_call",
    ]
    [note] = server.comments(ticket["id"])
    assert note["public"] is False
    assert "<strong>Summary</strong>" in note["html_body"]
    assert "Send plan options to the customer by email." in note["html_body"]
    assert "customer number" not in note["html_body"]  # transcript: off by default
    [create] = server.requests("POST", "tickets")
    assert create.json["ticket"]["tags"] == ticket["tags"]  # sent as Zendesk keeps them


@pytest.mark.parametrize(
    ("topic", "tag"),
    [
        ("Plan change", "plan_change"),
        ("  Kündigung  ", "kündigung"),
        ("VIP, urgent!", "vip_urgent"),
    ],
)
def test_topics_become_zendesk_tags(topic: str, tag: str) -> None:
    assert tag_for(topic) == tag


def test_group_and_assignee_come_from_the_maps(server: ZendeskTestServer) -> None:
    group = server.add_group("Second level")
    agent = server.add_user("Max Mustermann", email="max@example.com", role="agent")
    adapter = make(
        server,
        group_map={"1234567w0": group},
        assignee_map={"1234567w0": "max@example.com"},
    )
    adapter.write(job_for(adapter, "zd-maps-1"), Journal())
    [ticket] = tickets_for(server, "zd-maps-1")
    assert (str(ticket["group_id"]), str(ticket["assignee_id"])) == (group, agent)


def test_without_a_map_entry_the_policys_owner_is_the_assignee(
    server: ZendeskTestServer, adapter: ZendeskAdapter
) -> None:
    agent = server.add_user("Max Mustermann", email="max@example.com", role="agent")
    assert adapter.resolve_owner("MAX@example.com") == agent
    job = replace(job_for(adapter, "zd-owner-1"), owner_id=agent)
    adapter.write(job, Journal())
    [ticket] = tickets_for(server, "zd-owner-1")
    assert str(ticket["assignee_id"]) == agent
    assert ticket.get("group_id") is None


def test_an_end_user_is_no_owner(server: ZendeskTestServer, adapter: ZendeskAdapter) -> None:
    server.add_user("Erika Mustermann", email="erika@example.com")
    assert adapter.resolve_owner("erika@example.com") is None


def test_a_redelivery_with_an_empty_journal_finds_the_ticket(
    server: ZendeskTestServer, adapter: ZendeskAdapter
) -> None:
    first = adapter.write(job_for(adapter, "zd-replay-1"), Journal()).refs
    again = adapter.write(job_for(adapter, "zd-replay-1"), Journal()).refs
    assert first == again and len(tickets_for(server, "zd-replay-1")) == 1


def test_a_lost_answer_is_looked_up_by_external_id(
    server: ZendeskTestServer, adapter: ZendeskAdapter
) -> None:
    server.drop_next_answer(r"/api/v2/tickets\.json$", method="POST")
    journal = Journal()
    with pytest.raises(OutcomeUnknown):
        adapter.write(job_for(adapter, "zd-lost-1"), journal)
    assert len(tickets_for(server, "zd-lost-1")) == 1  # it was applied
    refs = adapter.write(job_for(adapter, "zd-lost-1"), Journal(journal.as_dict())).refs
    [ticket] = tickets_for(server, "zd-lost-1")
    assert refs["ticket"] == str(ticket["id"])
    assert len(server.requests("POST", "tickets")) == 1


def test_a_429_is_retried_after_its_retry_after(
    server: ZendeskTestServer, adapter: ZendeskAdapter
) -> None:
    server.fail_next(
        r"/api/v2/tickets\.json$", 429, "Too Many Requests", headers={"Retry-After": "7"}
    )
    with pytest.raises(RetryableError) as caught:
        adapter.write(job_for(adapter, "zd-429-1"), Journal())
    assert caught.value.retry_after == 7.0
    assert not isinstance(caught.value, OutcomeUnknown)


def test_every_request_to_zendesk_is_counted_under_the_targets_name(
    server: ZendeskTestServer,
) -> None:
    adapter = ZendeskAdapter("zendesk-counted", options(server))
    server.fail_next(
        r"/api/v2/tickets\.json$", 429, "Too Many Requests", headers={"Retry-After": "1"}
    )
    with pytest.raises(RetryableError):
        adapter.write(job_for(adapter, "zd-counted-1"), Journal())
    adapter.write(job_for(adapter, "zd-counted-1"), Journal())
    adapter.close()
    answered = [entry.status for entry in server.request_log if not entry.lost]
    assert crm_requests("zendesk-counted") == logged_statuses(answered)
    assert crm_requests("zendesk-counted")["429"] == 1


def test_the_servers_own_rate_limit_answers_429_with_retry_after() -> None:
    clock = ManualClock(1_000.0)
    with ZendeskTestServer(requests_per_minute=2, retry_after_seconds=13, clock=clock) as server:
        adapter = make(server)
        try:
            with pytest.raises(RetryableError) as caught:
                adapter.write(job_for(adapter, "zd-limit-1"), Journal())  # GET, POST: 3rd fails
                adapter.write(job_for(adapter, "zd-limit-2"), Journal())
            assert caught.value.retry_after == 13.0
            clock.advance(61)
            adapter.write(job_for(adapter, "zd-limit-2"), Journal())
            assert len(server.tickets()) == 2
        finally:
            adapter.close()


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, PermanentError), (409, PermanentError), (422, PermanentError), (502, OutcomeUnknown)],
)
def test_ticket_create_answers_map_to_the_pipelines_errors(
    server: ZendeskTestServer, adapter: ZendeskAdapter, status: int, error: type[Exception]
) -> None:
    body = {"error": "RecordInvalid", "details": {"subject": [{"error": "TooLong"}]}}
    server.fail_next(r"/api/v2/tickets\.json$", status, body, method="POST")
    with pytest.raises(error) as caught:
        adapter.write(job_for(adapter, f"zd-status-{status}"), Journal())
    assert f"HTTP {status} (RecordInvalid: subject (TooLong))" in str(caught.value)
    if error is PermanentError:
        assert not isinstance(caught.value, RetryableError)


def test_a_422_names_fields_and_codes_but_no_values(
    server: ZendeskTestServer, adapter: ZendeskAdapter
) -> None:
    job = job_for(adapter, "zd-422-1", matches=(CrmRecord("contact", "999", name="Erika M"),))
    with pytest.raises(PermanentError) as caught:
        adapter.write(job, Journal())
    message = str(caught.value)
    assert "HTTP 422" in message and "RecordInvalid: requester (InvalidValue)" in message
    assert "999" not in message.replace("HTTP 422", "")


def test_a_rejected_token_is_permanent_and_named(server: ZendeskTestServer) -> None:
    adapter = make(server, api_token="wrong-token-0000")
    with pytest.raises(PermanentError) as caught:
        adapter.write(job_for(adapter, "zd-401-1"), Journal())
    assert "api_token" in str(caught.value) and "wrong-token" not in str(caught.value)
    [result] = adapter.check()
    assert not result.ok and "api_token" in result.message


def test_a_minimal_call_gets_a_note_with_its_facts(
    server: ZendeskTestServer, adapter: ZendeskAdapter
) -> None:
    adapter.write(DeliveryJob(minimal_report("zd-min-1")), Journal())
    [ticket] = tickets_for(server, "zd-min-1")
    assert ticket["subject"] == "Call" and ticket["tags"] == []
    assert "Incoming call" in server.comments(ticket["id"])[0]["html_body"]


def test_describe_write_shows_the_lookup_and_the_exact_body(
    server: ZendeskTestServer, adapter: ZendeskAdapter
) -> None:
    ops = adapter.describe_write(job_for(adapter, "zd-describe-1"))
    assert [op["method"] for op in ops] == ["GET", "POST"]
    assert ops[1]["body"]["ticket"]["external_id"] == "zd-describe-1"
    assert ops[1]["body"]["ticket"]["comment"] == {"public": False, "html_body": "<p>Summary</p>"}
    json.dumps(ops)
    assert server.request_log == []


# ------------------------------------------------------------------------------------------
# New callers
# ------------------------------------------------------------------------------------------


def test_an_unknown_caller_becomes_one_end_user(
    server: ZendeskTestServer, adapter: ZendeskAdapter
) -> None:
    memo = MemoryMemo()
    adapter.bind_memo(memo)
    report = replace(example_report("zd-new-1"), from_number=CALLER.digits())
    plan = plan_delivery(report, shipped_policy(), adapter, Journal())
    assert plan.job is not None
    adapter.write(plan.job, Journal())
    [user] = [u for u in server.users() if u["role"] == "end-user"]
    assert user["phone"] == CALLER.e164 and user["name"] == "Call with 030 12345670"
    assert user["external_id"] == caller_external_id(CALLER)
    assert CALLER.digits() not in user["external_id"]
    [ticket] = tickets_for(server, "zd-new-1")
    assert ticket["requester_id"] == user["id"]
    # A second call before Zendesk's search shows the user: the claim remembers it.
    second = make(server)
    second.bind_memo(memo)
    record = second.create_record("contact", CALLER, {}, Journal())
    assert record.id == str(user["id"])
    assert len([u for u in server.users() if u["role"] == "end-user"]) == 1


def test_a_lost_answer_to_the_new_user_is_found_by_its_external_id(
    server: ZendeskTestServer, adapter: ZendeskAdapter
) -> None:
    server.drop_next_answer("create_or_update", method="POST")
    journal = Journal()
    with pytest.raises(OutcomeUnknown):
        adapter.create_record("contact", CALLER, {"name": "Anruf"}, journal)
    record = adapter.create_record("contact", CALLER, {"name": "Anruf"}, Journal(journal.as_dict()))
    [user] = [u for u in server.users() if u["role"] == "end-user"]
    assert record.id == str(user["id"]) and user["name"] == "Anruf"


def test_a_deleted_remembered_user_is_replaced(server: ZendeskTestServer) -> None:
    memo = MemoryMemo()
    adapter = make(server)
    adapter.bind_memo(memo)
    first = adapter.create_record("contact", CALLER, {}, Journal())
    other = parse_stored("+49 30 12345671", "DE")
    assert other is not None
    memo.set(adapter.writer.claims.key(other), f"{first.id}|{time.time()}")  # wrong number
    second = adapter.create_record("contact", other, {}, Journal())
    assert second.id != first.id


# ------------------------------------------------------------------------------------------
# check
# ------------------------------------------------------------------------------------------


def test_check_reports_token_fields_groups_and_agents(server: ZendeskTestServer) -> None:
    group = server.add_group("Support")
    server.add_user("Max Mustermann", email="max@example.com", role="agent")
    adapter = make(
        server,
        priority="high",
        group_map={"1234567w0": group},
        assignee_map={"1234567w0": "max@example.com"},
    )
    messages = [r.message for r in adapter.check() if r.ok]
    assert messages == [
        "API token accepted (role admin).",
        "Ticket fields active: subject, description, status, priority, group, assignee.",
        "All 1 mapped groups exist.",
        "All 1 mapped agents exist.",
    ]


def test_check_finds_what_would_fail(server: ZendeskTestServer) -> None:
    server.deactivate_field("priority")
    deleted = server.add_group("Old", deleted=True)
    end_user = server.add_user("Erika Mustermann", email="erika@example.com")
    adapter = make(
        server,
        priority="low",
        group_map={"1234567w0": deleted, "1234567w1": "42"},
        assignee_map={"1234567w0": end_user, "1234567w1": "nobody@example.com"},
    )
    failed = [r.message for r in adapter.check() if not r.ok]
    assert failed == [
        "Ticket fields not active in Zendesk: priority (Admin Center → Objects and rules → "
        "Tickets → Fields).",
        f"group_map.1234567w0: Zendesk has no group {deleted}.",
        "group_map.1234567w1: Zendesk has no group 42.",
        "assignee_map.1234567w0: Zendesk has no such agent.",
        "assignee_map.1234567w1: Zendesk has no such agent.",
    ]


def test_check_reads_every_page_of_groups(server: ZendeskTestServer) -> None:
    groups = [server.add_group(f"Group {n}") for n in range(230)]
    adapter = make(server, group_map={"1234567w0": groups[-1]})
    assert all(r.ok for r in adapter.check())
    assert len(server.requests("GET", "groups")) == 3


def test_check_refuses_an_end_users_token() -> None:
    with ZendeskTestServer(email="erika@example.com") as server:
        server._me["role"] = "end-user"  # the token's own user
        adapter = make(server, email="erika@example.com")
        [result] = adapter.check()
        assert not result.ok and "role end-user" in result.message


def test_the_first_mapped_user_of_the_call_picks_the_group(server: ZendeskTestServer) -> None:
    first, second = server.add_group("First level"), server.add_group("Second level")
    adapter = make(server, group_map={"w0": second, "7654321w5": first})
    report = example_report("zd-users-1")
    unmapped = User("w9", "1234567w9", "1234567", "Erika", "Mustermann", "Erika Mustermann")
    adapter.write(job_for(adapter, "zd-users-1", users=(unmapped, *report.users)), Journal())
    assert str(tickets_for(server, "zd-users-1")[0]["group_id"]) == second


# ------------------------------------------------------------------------------------------
# The command line
# ------------------------------------------------------------------------------------------


def test_sipgate_crm_check_zendesk_reports_token_fields_and_groups(
    server: ZendeskTestServer, tmp_path: Path
) -> None:
    group = server.add_group("Support")
    target = {
        "name": "support",
        "type": "zendesk",
        "url": server.url,
        "email": AGENT_EMAIL,
        "api_token": API_TOKEN,
        "group_map": {"1234567w0": group, "1234567w1": "404"},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"targets": [target]}))
    result = CliRunner().invoke(
        main, ["check", "--config", str(tmp_path / "config.yaml"), "zendesk"]
    )
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [
        "ok   support: API token accepted (role admin).",
        "ok   support: Ticket fields active: subject, description, status, group.",
        "FAIL support: group_map.1234567w1: Zendesk has no group 404.",
    ]
    listed = CliRunner().invoke(main, ["adapters"])
    assert "zendesk" in {line.split()[0] for line in listed.output.splitlines()}
