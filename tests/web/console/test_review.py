"""The review queue's routes: candidates, search requests, "log on this record", remembering."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select, update

from connector.ledger.console import PIN_PREFIX
from connector.ledger.requests import SEARCH, Requests
from connector.ledger.tables import DEAD, PENDING, REVIEW, deliveries
from connector.services import Services
from tests.web.console.conftest import post_form

CANDIDATES = [
    {
        "type": "contact",
        "id": "K1",
        "name": "Erika Beispiel",
        "owner_id": "o1",
        "parent_id": None,
        "modified_at": "2026-11-30T10:00:00+00:00",
        "phones": ["0211 63553400"],
        "matched_number": "+4921163553400",
        "extra": {},
    },
    {
        "type": "contact",
        "id": "K2",
        "name": "Erika B.",
        "owner_id": "o2",
        "parent_id": "C1",
        "modified_at": None,
        "phones": [],
        "matched_number": "+4921163553400",
        "extra": {},
    },
]


def hold(services: Services, status: str = REVIEW) -> int:
    refs = {
        "review": {"reason": "ambiguous", "candidates": CANDIDATES, "since": "x", "deadline": "y"}
    }
    with services.ledger.engine.begin() as conn:
        conn.execute(
            update(deliveries).values(
                status=status, refs=refs, next_attempt_at=datetime.now(UTC) + timedelta(hours=4)
            )
        )
        return int(conn.execute(select(deliveries.c.id)).scalar_one())


def delivery_row(services: Services) -> Any:
    with services.ledger.connection() as conn:
        return conn.execute(select(deliveries)).one()


def test_the_queue_lists_held_calls_with_their_candidates(
    viewer: FlaskClient, console_services: Services, store_call: Callable[..., str]
) -> None:
    store_call("pbx-1")
    assert "Nothing to review." in viewer.get("/console/review").get_data(as_text=True)
    hold(console_services)
    page = viewer.get("/console/review").get_data(as_text=True)
    assert "Erika Beispiel" in page and "Erika B." in page and "o1" in page
    assert "2026-11-30 10:00" in page
    assert "Log on this record" not in page  # viewers see, operators act


def test_log_on_this_record_assigns_it_and_remembers_the_number(
    operator: FlaskClient, console_services: Services, store_call: Callable[..., str]
) -> None:
    store_call("pbx-1")
    delivery = hold(console_services)
    response = post_form(
        operator,
        f"/console/review/{delivery}/assign",
        "/console/review",
        source="review",
        index="1",
        remember="1",
    )
    assert response.status_code == 302 and response.location == "/console/calls/pbx-1"
    row = delivery_row(console_services)
    assert row.status == PENDING
    assert row.refs["match"] == {
        "status": "assigned",
        "assigned_by": "otto",
        "records": [
            {
                "type": "contact",
                "id": "K2",
                "name": "Erika B.",
                "owner_id": "o2",
                "parent_id": "C1",
                "extra": {},
            }
        ],
    }
    pinned = console_services.ledger.memo_get("warehouse", PIN_PREFIX + "+4921163553400")
    assert pinned is not None and json.loads(pinned)["id"] == "K2"
    page = operator.get("/console/calls/pbx-1").get_data(as_text=True)
    assert "assign contact K2" in page and "remember_number" in page
    again = post_form(operator, f"/console/review/{delivery}/assign", "/console/review", index="0")
    assert again.status_code == 409  # no longer held: assigned once


def test_assigning_needs_an_operator_a_token_and_a_real_candidate(
    viewer: FlaskClient,
    operator: FlaskClient,
    console_services: Services,
    store_call: Callable[..., str],
) -> None:
    store_call("pbx-1")
    delivery = hold(console_services)
    path = f"/console/review/{delivery}/assign"
    assert post_form(viewer, path, "/console/review", index="0").status_code == 403
    assert operator.post(path, data={"index": "0"}).status_code == 400
    assert post_form(operator, path, "/console/review", index="7").status_code == 400
    assert post_form(operator, "/console/review/999/assign", "/console/review").status_code == 404
    assert delivery_row(console_services).status == REVIEW


def test_a_delivery_that_is_not_held_cannot_be_assigned(
    operator: FlaskClient, console_services: Services, store_call: Callable[..., str]
) -> None:
    store_call("pbx-1")
    delivery = hold(console_services, DEAD)
    path = f"/console/review/{delivery}/assign"
    assert post_form(operator, path, "/console/review", index="0").status_code == 409


def test_search_asks_the_worker_and_shows_its_candidates(
    operator: FlaskClient, console_services: Services, store_call: Callable[..., str]
) -> None:
    store_call("pbx-1")
    delivery = hold(console_services)
    response = post_form(
        operator, f"/console/review/{delivery}/search", "/console/review", query="0211 999"
    )
    assert response.status_code == 302
    requests = Requests(console_services.ledger.engine)
    [waiting] = requests.recent(SEARCH)
    assert waiting.params == {"number": "0211 999", "delivery_id": delivery}
    assert waiting.target == "warehouse"
    page = operator.get("/console/review").get_data(as_text=True)
    assert "The worker is searching" in page
    assert 'http-equiv="refresh" content="2; url=/console/review"' in page
    found = {**CANDIDATES[0], "id": "K9", "name": "Found by search"}
    requests.finish(waiting.id, True, {"candidates": [found]})
    page = operator.get("/console/review").get_data(as_text=True)
    assert "Found by search" in page
    post_form(
        operator,
        f"/console/review/{delivery}/assign",
        "/console/review",
        source="search",
        index="0",
    )
    assert delivery_row(console_services).refs["match"]["records"][0]["id"] == "K9"
