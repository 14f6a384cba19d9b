"""The Zendesk test server speaks the documented API: checked with plain ``requests``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.fakes.base import ManualClock
from tests.fakes.zendesk_server import AGENT_EMAIL, API_TOKEN, ZendeskTestServer

AUTH = (f"{AGENT_EMAIL}/token", API_TOKEN)


@pytest.fixture
def server() -> Iterator[ZendeskTestServer]:
    with ZendeskTestServer() as running:
        yield running


def get(server: ZendeskTestServer, path: str, **params: Any) -> requests.Response:
    return requests.get(f"{server.url}{path}", params=params, auth=AUTH, timeout=5)


def post(server: ZendeskTestServer, path: str, body: Any) -> requests.Response:
    return requests.post(f"{server.url}{path}", json=body, auth=AUTH, timeout=5)


def ticket(**fields: Any) -> dict[str, Any]:
    return {"ticket": {"subject": "Hi", "comment": {"body": "Text", "public": False}, **fields}}


@pytest.mark.parametrize(
    "auth",
    [None, (AGENT_EMAIL, API_TOKEN), (f"{AGENT_EMAIL}/token", "wrong"), ("x/token", API_TOKEN)],
)
def test_only_email_slash_token_with_the_api_token_is_accepted(
    server: ZendeskTestServer, auth: tuple[str, str] | None
) -> None:
    answer = requests.get(f"{server.url}/api/v2/users/me.json", auth=auth, timeout=5)
    assert answer.status_code == 401
    assert answer.json() == {"error": "Couldn't authenticate you"}
    assert server.request_log[-1].auth_user is None


def test_me_is_the_tokens_agent(server: ZendeskTestServer) -> None:
    me = get(server, "/api/v2/users/me.json").json()["user"]
    assert (me["email"], me["role"]) == (AGENT_EMAIL, "admin")
    assert server.request_log[-1].auth_user == f"{AGENT_EMAIL}/token"


def test_phone_search_exact_digits_and_wildcard(server: ZendeskTestServer) -> None:
    erika = server.add_user("Erika Mustermann", phone="+49 (30) 123456-70")
    vienna = server.add_user("Max Mustermann", phone="+43 30 12345670")

    def ids(query: str) -> list[str]:
        users = get(server, "/api/v2/users/search.json", query=query).json()["users"]
        return [str(u["id"]) for u in users]

    assert ids("phone:493012345670") == [erika]
    assert ids("phone:03012345670") == []
    assert ids("phone:*3012345670") == [erika, vienna]
    assert ids("email:api.agent@EXAMPLE.com") == [str(server.users()[0]["id"])]
    assert get(server, "/api/v2/users/search.json", query="nonsense").status_code == 400


def test_new_users_are_searchable_only_after_the_lag_but_external_id_at_once() -> None:
    clock = ManualClock()
    with ZendeskTestServer(search_lag_seconds=30, clock=clock) as server:
        body = {"user": {"name": "Anruf", "phone": "+493012345670", "external_id": "ext-1"}}
        created = post(server, "/api/v2/users.json", body)
        assert created.status_code == 201
        search = {"query": "phone:493012345670"}
        assert get(server, "/api/v2/users/search.json", **search).json()["users"] == []
        by_id = get(server, "/api/v2/users/search.json", external_id="ext-1").json()["users"]
        assert [u["id"] for u in by_id] == [created.json()["user"]["id"]]
        clock.advance(30)
        assert len(get(server, "/api/v2/users/search.json", **search).json()["users"]) == 1


def test_users_create_and_create_or_update(server: ZendeskTestServer) -> None:
    body = {"user": {"name": "Anruf", "phone": "+493012345670", "external_id": "ext-2"}}
    first = post(server, "/api/v2/users.json", body)
    assert first.status_code == 201 and first.json()["user"]["role"] == "end-user"
    duplicate = post(server, "/api/v2/users.json", body)
    assert duplicate.status_code == 422
    assert duplicate.json()["details"]["external_id"][0]["error"] == "DuplicateValue"
    upsert = post(server, "/api/v2/users/create_or_update.json", body)
    assert upsert.status_code == 200 and upsert.json()["user"]["id"] == first.json()["user"]["id"]
    fresh = post(server, "/api/v2/users/create_or_update.json", {"user": {"name": "Neu"}})
    assert fresh.status_code == 201
    blank = post(server, "/api/v2/users.json", {"user": {"name": " "}})
    assert blank.status_code == 422 and blank.json()["error"] == "RecordInvalid"
    user_id = first.json()["user"]["id"]
    assert get(server, f"/api/v2/users/{user_id}.json").json()["user"]["name"] == "Anruf"
    assert get(server, "/api/v2/users/1.json").status_code == 404


def test_ticket_create_stores_a_private_comment_and_zendesk_tags(
    server: ZendeskTestServer,
) -> None:
    group = server.add_group("Support")
    agent = server.add_user("Max Mustermann", email="max@example.com", role="agent")
    created = post(
        server,
        "/api/v2/tickets.json",
        ticket(
            external_id="call-1",
            tags=["Plan Change", "vip"],
            group_id=int(group),
            assignee_id=int(agent),
            priority="high",
        ),
    )
    assert created.status_code == 201
    stored = created.json()["ticket"]
    assert stored["tags"] == ["plan", "change", "vip"]
    assert (stored["status"], stored["priority"], stored["requester_id"]) == (
        "new",
        "high",
        server.users()[0]["id"],
    )
    [comment] = server.comments(stored["id"])
    assert comment["public"] is False and comment["body"] == "Text"
    listed = get(server, "/api/v2/tickets.json", external_id="call-1").json()["tickets"]
    assert [t["id"] for t in listed] == [stored["id"]]
    assert get(server, "/api/v2/tickets.json", external_id="other").json()["tickets"] == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"comment": {"body": ""}}, "description"),
        ({"requester_id": 123}, "requester"),
        ({"group_id": 123}, "group"),
        ({"status": "closed!"}, "status"),
        ({"priority": "asap"}, "priority"),
        ({"assignee_id": 123}, "assignee"),
        ({"tags": "vip"}, "tags"),
    ],
)
def test_invalid_tickets_are_422_with_details(
    server: ZendeskTestServer, fields: dict[str, Any], field: str
) -> None:
    answer = post(server, "/api/v2/tickets.json", ticket(**fields))
    assert answer.status_code == 422
    assert answer.json()["error"] == "RecordInvalid"
    assert list(answer.json()["details"]) == [field]
    assert server.tickets() == []


def test_ticket_fields_and_groups(server: ZendeskTestServer) -> None:
    server.deactivate_field("priority")
    fields = get(server, "/api/v2/ticket_fields.json").json()["ticket_fields"]
    active = {f["type"]: f["active"] for f in fields}
    assert active["priority"] is False and active["subject"] is True
    for number in range(3):
        server.add_group(f"Group {number}")
    page = get(server, "/api/v2/groups.json", per_page=2).json()
    assert len(page["groups"]) == 2 and page["next_page"]
    rest = requests.get(page["next_page"], auth=AUTH, timeout=5).json()
    assert len(rest["groups"]) == 1 and rest["next_page"] is None


def test_the_rate_limit_answers_429_with_retry_after() -> None:
    clock = ManualClock()
    with ZendeskTestServer(requests_per_minute=2, retry_after_seconds=9, clock=clock) as server:
        first = get(server, "/api/v2/users/me.json")
        assert first.headers["X-Rate-Limit"] == "2"
        assert first.headers["X-Rate-Limit-Remaining"] == "1"
        get(server, "/api/v2/users/me.json")
        limited = get(server, "/api/v2/users/me.json")
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "9"
        clock.advance(60.5)
        assert get(server, "/api/v2/users/me.json").status_code == 200


def test_injected_answers_touch_no_state(server: ZendeskTestServer) -> None:
    server.fail_next(r"/tickets\.json$", 503, method="POST")
    assert post(server, "/api/v2/tickets.json", ticket()).status_code == 503
    assert server.tickets() == [] and server.request_log[-1].injected
    assert post(server, "/api/v2/tickets.json", ticket()).status_code == 201


def test_a_dropped_answer_is_applied_but_never_arrives(server: ZendeskTestServer) -> None:
    server.drop_next_answer(r"/tickets\.json$", method="POST")
    with pytest.raises(requests.ConnectionError):
        post(server, "/api/v2/tickets.json", ticket(external_id="call-9"))
    assert [t["external_id"] for t in server.tickets()] == ["call-9"]
    assert post(server, "/api/v2/tickets.json", ticket()).status_code == 201
