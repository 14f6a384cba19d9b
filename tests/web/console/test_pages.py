"""The overview, calls list, call page and configuration page under Flask's test client."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from connector.ledger.requests import CHECK, Requests
from connector.ledger.tables import DEAD, PENDING, REVIEW, SKIPPED, console_actions, deliveries
from connector.services import Services
from tests.web.console.conftest import post_form


def set_status(services: Services, status: str, **values: object) -> int:
    with services.ledger.engine.begin() as conn:
        conn.execute(update(deliveries).values(status=status, **values))
        return int(conn.execute(select(deliveries.c.id)).scalars().first() or 0)


def test_overview_counts_by_state_and_draws_the_chart(
    viewer: FlaskClient, console_services: Services, store_call: Callable[..., str]
) -> None:
    store_call("pbx-1")
    store_call("pbx-2")
    set_status(console_services, DEAD, last_error="HubSpot said no")
    console_services.ledger.park_target(
        "warehouse", datetime.now(UTC) + timedelta(hours=1), "daily limit"
    )
    page = viewer.get("/console/").get_data(as_text=True)
    assert "<svg" in page and 'role="img"' in page
    assert 'href="/console/calls?target=warehouse&amp;status=dead">2</a>' in page
    assert "daily limit" in page
    assert ">2</text>" in page  # today's bar


def attention(page: str, card: str) -> str:
    """The overview card `card` (``parked`` or ``dead``)."""
    return page.split(f'id="{card}"')[1].split("</div>")[0]


def test_overview_shows_parked_and_dead_targets_with_their_reasons(
    viewer: FlaskClient, console_services: Services, store_call: Callable[..., str]
) -> None:
    page = viewer.get("/console/").get_data(as_text=True)
    assert "none" in attention(page, "parked") and "none" in attention(page, "dead")
    for n in range(3):
        store_call(f"pbx-{n}")
    earlier = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    with console_services.ledger.engine.begin() as conn:
        ids = list(conn.execute(select(deliveries.c.id).order_by(deliveries.c.id)).scalars())
        for delivery_id, reason, at in (
            (ids[0], "HubSpot answered 400: property does not exist", earlier),
            (ids[1], "HubSpot answered 403: missing scope", earlier + timedelta(hours=5)),
        ):
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(status=DEAD, last_error=reason, updated_at=at)
            )
    parked_at = datetime.now(UTC).replace(microsecond=0)
    console_services.ledger.park_target("warehouse", parked_at + timedelta(hours=2), "daily limit")
    page = viewer.get("/console/").get_data(as_text=True)
    dead = attention(page, "dead")
    assert 'href="/console/calls?target=warehouse&amp;status=dead"' in dead
    assert "2 dead" in dead and "missing scope" in dead and "2026-11-30 14:00" in dead
    assert "property does not exist" not in dead  # the most recent reason only
    parked = attention(page, "parked")
    assert "warehouse" in parked and "daily limit" in parked
    since = re.search(r'since <time datetime="([^"]+)">', parked)
    assert since is not None  # when it was parked: now, by the ledger's clock
    assert abs(datetime.fromisoformat(since.group(1)) - parked_at) < timedelta(minutes=1)
    assert f"until {viewer_time(parked_at + timedelta(hours=2))}" in parked
    german = viewer.get("/console/?lang=de").get_data(as_text=True)
    assert "2 aufgegeben" in german and "letzter Grund" in german and "seit" in german
    listed = viewer.get("/console/calls?target=warehouse&status=dead").get_data(as_text=True)
    assert "pbx-0" in listed and "pbx-1" in listed and "pbx-2" not in listed


def viewer_time(value: datetime) -> str:
    """How the console shows a time: a <time> element, minutes, UTC."""
    return f'<time datetime="{value.isoformat()}">{value.strftime("%Y-%m-%d %H:%M")}</time>'


def test_calls_list_newest_first_with_keyset_pages(
    viewer: FlaskClient, store_call: Callable[..., str], app: Flask
) -> None:
    import connector.web.console.pages as pages

    for n in range(5):
        store_call(f"pbx-{n}")
    original = pages.PAGE_SIZE
    pages.PAGE_SIZE = 2
    try:
        first = viewer.get("/console/calls").get_data(as_text=True)
        assert first.index("pbx-4") < first.index("pbx-3")
        assert "pbx-2" not in first
        older = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
        second = viewer.get(older.replace("&amp;", "&")).get_data(as_text=True)
        assert "pbx-2" in second and "pbx-1" in second and "pbx-4" not in second
    finally:
        pages.PAGE_SIZE = original


def test_search_finds_a_number_typed_in_any_format_and_masks_numbers(
    viewer: FlaskClient, store_call: Callable[..., str]
) -> None:
    store_call("pbx-mrs-x", **{"from": "4921163553499"})
    store_call("pbx-other")
    for typed in ("0211 635534-99", "+49 (211) 63553499", "0049 211 63553499"):
        page = viewer.get("/console/calls", query_string={"q": typed}).get_data(as_text=True)
        assert "pbx-mrs-x" in page, typed
        assert "pbx-other" not in page
        assert "4921163553499" not in page  # masked
    by_id = viewer.get("/console/calls?q=pbx-other").get_data(as_text=True)
    assert "pbx-other" in by_id and "pbx-mrs-x" not in by_id


def test_calls_list_filters(
    viewer: FlaskClient, console_services: Services, store_call: Callable[..., str]
) -> None:
    store_call("pbx-in")
    store_call("pbx-out", direction="OUT")
    page = viewer.get("/console/calls?direction=OUT").get_data(as_text=True)
    assert "pbx-out" in page and "pbx-in" not in page
    page = viewer.get("/console/calls?status=dead").get_data(as_text=True)
    assert "pbx-in" not in page and "pbx-out" not in page
    page = viewer.get("/console/calls?user=Mustermann&target=warehouse").get_data(as_text=True)
    assert "pbx-in" in page
    today = datetime.now(UTC).date()
    page = viewer.get(f"/console/calls?until={today - timedelta(days=2)}").get_data(as_text=True)
    assert "pbx-in" not in page


def test_call_page_hides_the_transcript_from_viewers(
    viewer: FlaskClient, operator: FlaskClient, store_call: Callable[..., str]
) -> None:
    store_call("pbx-1")
    for_viewer = viewer.get("/console/calls/pbx-1").get_data(as_text=True)
    assert "Good day, I'm calling about my contract" not in for_viewer
    assert "The transcript is shown to operators only." in for_viewer
    for_operator = operator.get("/console/calls/pbx-1").get_data(as_text=True)
    assert "Good day, I&#39;m calling about my contract" in for_operator
    assert "4921163553400" not in for_operator


def test_an_operator_reveals_a_number_and_it_is_recorded(
    operator: FlaskClient,
    viewer: FlaskClient,
    console_services: Services,
    store_call: Callable[..., str],
) -> None:
    store_call("pbx-1")
    response = post_form(operator, "/console/calls/pbx-1/reveal", "/console/calls/pbx-1")
    assert response.status_code == 302
    assert "4921163553400" in operator.get(response.location).get_data(as_text=True)
    assert "4921163553400" not in viewer.get(response.location).get_data(as_text=True)
    assert (
        post_form(viewer, "/console/calls/pbx-1/reveal", "/console/calls/pbx-1").status_code == 403
    )
    with console_services.ledger.connection() as conn:
        assert conn.execute(
            select(console_actions.c.user).where(console_actions.c.action == "reveal_numbers")
        ).scalars().all() == ["otto"]


def test_an_unknown_call_is_404(viewer: FlaskClient) -> None:
    response = viewer.get("/console/calls/pbx-nope")
    assert response.status_code == 404
    assert "Not found." in response.get_data(as_text=True)


def test_replay_a_dead_delivery_is_recorded_and_shown(
    operator: FlaskClient, console_services: Services, store_call: Callable[..., str]
) -> None:
    store_call("pbx-1")
    delivery = set_status(console_services, DEAD, last_error="Rejected", attempts=4)
    response = post_form(operator, f"/console/deliveries/{delivery}/replay", "/console/calls/pbx-1")
    assert response.status_code == 302
    with console_services.ledger.connection() as conn:
        row = conn.execute(select(deliveries)).one()
    assert (row.status, row.attempts) == (PENDING, 0)
    page = operator.get("/console/calls/pbx-1").get_data(as_text=True)
    assert "otto" in page and "replay" in page


def test_skip_and_retry_now(
    operator: FlaskClient, console_services: Services, store_call: Callable[..., str]
) -> None:
    store_call("pbx-1")
    later = datetime.now(UTC) + timedelta(hours=1)
    delivery = set_status(console_services, REVIEW, next_attempt_at=later)
    post_form(operator, f"/console/deliveries/{delivery}/retry_now", "/console/calls/pbx-1")
    with console_services.ledger.connection() as conn:
        assert conn.execute(select(deliveries.c.next_attempt_at)).scalar_one() < later
    post_form(operator, f"/console/deliveries/{delivery}/skip", "/console/calls/pbx-1")
    with console_services.ledger.connection() as conn:
        row = conn.execute(select(deliveries)).one()
    assert row.status == SKIPPED and row.last_error == "Skipped in the console by otto"
    # A skipped delivery cannot be retried: 409, nothing changes.
    again = post_form(operator, f"/console/deliveries/{delivery}/retry_now", "/console/calls/pbx-1")
    assert again.status_code == 409


def test_actions_need_an_operator_and_a_csrf_token(
    viewer: FlaskClient,
    operator: FlaskClient,
    console_services: Services,
    store_call: Callable[..., str],
) -> None:
    store_call("pbx-1")
    delivery = set_status(console_services, DEAD)
    path = f"/console/deliveries/{delivery}/replay"
    assert post_form(viewer, path, "/console/calls/pbx-1").status_code == 403
    assert operator.post(path).status_code == 400  # no token
    assert operator.post(path, data={"csrf_token": "forged"}).status_code == 400
    assert post_form(operator, "/console/deliveries/99999/replay", "/console/").status_code == 409
    assert (
        post_form(operator, f"/console/deliveries/{delivery}/explode", "/console/").status_code
        == 404
    )
    with console_services.ledger.connection() as conn:
        assert conn.execute(select(deliveries.c.status)).scalar_one() == DEAD


def test_configuration_hides_secrets_and_asks_the_worker_to_check(
    operator: FlaskClient, viewer: FlaskClient, console_services: Services
) -> None:
    page = operator.get("/console/configuration").get_data(as_text=True)
    assert "warehouse" in page and "not checked yet" in page
    assert (
        post_form(viewer, "/console/configuration/warehouse/check", "/console/").status_code == 403
    )
    response = post_form(operator, "/console/configuration/warehouse/check", "/console/")
    assert response.status_code == 302
    requests = Requests(console_services.ledger.engine)
    waiting = requests.latest(CHECK, "warehouse")
    assert waiting is not None and waiting.requested_by == "otto"
    # The refresh names the page (a URL with a #fragment would not reload), under any prefix.
    refresh = 'http-equiv="refresh" content="2; url=%s/console/configuration"'
    assert refresh % "" in operator.get("/console/configuration").get_data(as_text=True)
    behind = operator.get("/console/configuration", base_url="http://localhost/tools")
    assert refresh % "/tools" in behind.get_data(as_text=True)
    requests.finish(waiting.id, True, {"results": [{"ok": True, "message": "table ready"}]})
    page = operator.get("/console/configuration").get_data(as_text=True)
    assert "ok: table ready" in page and 'http-equiv="refresh"' not in page
    assert post_form(operator, "/console/configuration/nope/check", "/console/").status_code == 404


def test_public_options_hide_secrets() -> None:
    from connector.config.sections import TargetConfig
    from connector.web.console.settings import HIDDEN, public_options

    target = TargetConfig(
        "crm",
        "hubspot",
        {
            "access_token": "pat-na1-secret",
            "auth": {"client_secret": "s3cret", "client_id": "abc"},
            "url": "postgresql+psycopg://user:pw@db/calls",
            "portal_time_zone": "Europe/Berlin",
        },
    )
    shown = public_options(target)
    assert shown["access_token"] == HIDDEN
    assert shown["auth"] == {"client_secret": HIDDEN, "client_id": "abc"}
    assert "pw" not in shown["url"] and "user:***@db" in shown["url"]
    assert shown["portal_time_zone"] == "Europe/Berlin"
