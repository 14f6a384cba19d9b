"""``GET /metrics``: webhook counts by outcome, ledger gauges, the token, no personal labels."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from connector.adapters import observe_request
from connector.adapters.kit.observe import record_rate_limit_wait
from connector.config.sections import Config
from connector.ledger.tables import DEAD
from connector.services import Services
from connector.web.app import create_app

TOKEN = "metrics-token-0123456789"


def samples(
    client: FlaskClient, **headers: str
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.data
    assert response.content_type.startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for s in family.samples
    }


def webhooks(found: dict[Any, float], outcome: str, reason: str = "") -> float:
    key = ("sipgate_crm_webhooks_total", (("outcome", outcome), ("reason", reason)))
    return found.get(key, 0.0)


def test_webhooks_are_counted_by_outcome_and_the_ledger_is_reported(
    services: Services, example_v1: dict[str, Any]
) -> None:
    client = create_app(services.config, services.ledger).test_client()
    before = samples(client)
    body = json.dumps(example_v1)
    assert (
        client.post("/webhooks/sipgate", data=body, content_type="application/json").json["status"]
        == "accepted"
    )
    client.post("/webhooks/sipgate", data=body, content_type="application/json")
    client.post("/webhooks/sipgate", data="{", content_type="application/json")
    client.post("/webhooks/sipgate", data=body, content_type="text/plain")
    after = samples(client)
    for outcome, reason in [
        ("accepted", ""),
        ("duplicate", ""),
        ("rejected", "invalid_json"),
        ("rejected", "unsupported_media_type"),
    ]:
        assert webhooks(after, outcome, reason) - webhooks(before, outcome, reason) == 1
    assert (
        after[("sipgate_crm_ledger_deliveries", (("state", "pending"), ("target", "warehouse")))]
        == 1
    )
    assert after[("sipgate_crm_ledger_deliveries", (("state", DEAD), ("target", "warehouse")))] == 0
    assert (
        after[("sipgate_crm_ledger_oldest_unfinished_age_seconds", (("target", "warehouse"),))] >= 0
    )
    assert after[("sipgate_crm_target_parked", (("target", "warehouse"),))] == 0
    newest = after[("sipgate_crm_ledger_last_webhook_timestamp_seconds", ())]
    assert abs(newest - datetime.now(UTC).timestamp()) < 3600
    text = client.get("/metrics").get_data(as_text=True)
    assert example_v1["call"]["id"] not in text
    assert example_v1["call"]["from"] not in text and example_v1["call"]["to"] not in text


def test_parked_targets_and_the_review_queue(
    services: Services, example_v1: dict[str, Any]
) -> None:
    from connector.payload import parse_report

    ledger = services.ledger
    [delivery] = ledger.store_call(parse_report(example_v1), b"{}", ["warehouse"]) or []
    claim = ledger.claim(delivery, timedelta(seconds=60))
    assert claim is not None
    ledger.complete(claim, {"match": {"status": "unmatched", "records": []}})
    ledger.park_target("warehouse", datetime.now(UTC) + timedelta(hours=1), "daily limit")
    found = samples(create_app(services.config, ledger).test_client())
    assert found[("sipgate_crm_ledger_review_queue_length", (("target", "warehouse"),))] == 1
    assert found[("sipgate_crm_target_parked", (("target", "warehouse"),))] == 1
    assert (
        "sipgate_crm_ledger_oldest_unfinished_age_seconds",
        (("target", "warehouse"),),
    ) not in found


def test_the_token_protects_the_endpoint(write_config: Callable[..., Config]) -> None:
    config = write_config(server={"metrics_token": TOKEN})
    opened = Services.open(config)
    try:
        client = create_app(config, opened.ledger).test_client()
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer wrong-token-0123456789"})
        assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")
        assert samples(client, Authorization=f"Bearer {TOKEN}")
    finally:
        opened.close()


def test_metric_names_follow_the_conventions(services: Services) -> None:
    found = samples(create_app(services.config, services.ledger).test_client())
    ours = {name for name, _ in found if name.startswith("sipgate_crm_")}
    assert ours
    for name in ours:
        assert name == name.lower() and "__" not in name
    counters = {
        n
        for n in ours
        if "webhooks" in n
        or n.startswith(("sipgate_crm_deliveries", "sipgate_crm_crm_requests"))
        or "rate_limit_wait" in n
    }
    assert all(n.endswith(("_total", "_created")) for n in counters)


def test_crm_requests_and_rate_limit_waits_are_exposed(services: Services) -> None:
    client = create_app(services.config, services.ledger).test_client()
    before = samples(client)
    with observe_request("warehouse") as observation:
        observation.status = 201
    with pytest.raises(requests.ReadTimeout), observe_request("warehouse"):
        raise requests.ReadTimeout("no answer")
    record_rate_limit_wait("warehouse", 1.5)
    after = samples(client)

    def grown(name: str, **labels: str) -> float:
        key = (name, tuple(sorted({"target": "warehouse", **labels}.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grown("sipgate_crm_crm_requests_total", status="201") == 1
    assert grown("sipgate_crm_crm_requests_total", status="timeout") == 1
    assert grown("sipgate_crm_crm_request_duration_seconds_count") == 2
    assert grown("sipgate_crm_crm_request_duration_seconds_bucket", le="+Inf") == 2
    assert grown("sipgate_crm_rate_limit_waits_total") == 1
    assert grown("sipgate_crm_rate_limit_wait_seconds_total") == pytest.approx(1.5)
