"""``/metrics`` across real gunicorn workers and the worker process (multiprocess mode)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.hubspot_server import DEFAULT_TOKEN, HubSpotTestServer
from tests.integration.harness import RunningService, free_port, raw_chunked_post

pytestmark = pytest.mark.integration

TOKEN = "scrape-token-0123456789abcdef"


def scrape(running: RunningService) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = requests.get(
        f"{running.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_every_scrape_adds_up_all_processes(tmp_path: Path, example_v1: dict[str, Any]) -> None:
    running = RunningService(tmp_path, server={"metrics_token": TOKEN})
    stale = tmp_path / "data" / "metrics" / "web" / "counter_999999.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left over from an earlier run")
    running.start_web()
    running.start_worker()
    try:
        assert not stale.exists()  # wiped at start
        assert requests.get(f"{running.url}/metrics", timeout=10).status_code == 401
        for n in range(6):
            call = json.loads(json.dumps(example_v1))
            call["call"]["id"] = f"metrics-{n}"
            status, _ = raw_chunked_post(
                running.port, "/webhooks/sipgate", json.dumps(call).encode()
            )
            assert status == 200
        running.wait_for(
            lambda rows: (
                len(rows) == 6 and all(r["targets"]["warehouse"]["status"] == "done" for r in rows)
            )
        )
        accepted = ("sipgate_crm_webhooks_total", (("outcome", "accepted"), ("reason", "")))
        done = ("sipgate_crm_deliveries_total", (("outcome", "done"), ("target", "warehouse")))
        duration = ("sipgate_crm_delivery_duration_seconds_count", (("target", "warehouse"),))
        state = ("sipgate_crm_ledger_deliveries", (("state", "done"), ("target", "warehouse")))
        # Two gunicorn workers took the webhooks; any of them answers the scrape with the sum.
        for _ in range(4):
            found = scrape(running)
            assert found[accepted] == 6
            attempts = {k: v for k, v in found.items() if k[0] == "sipgate_crm_deliveries_total"}
            # Under load a 3-second lease may run out: attempts then exceed the calls.
            assert found[done] == 6 and found[duration] == sum(attempts.values()), attempts
            assert found[state] == 6
        assert (
            "metrics-"
            not in requests.get(
                f"{running.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
            ).text
        )
    finally:
        running.stop()


def test_the_workers_crm_requests_reach_the_scrape(
    tmp_path: Path, example_v1: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    hubspot = HubSpotTestServer()
    hubspot.add_property("calls", "hs_call_external_id")
    monkeypatch.setenv("HUBSPOT_TEST_TOKEN", DEFAULT_TOKEN)
    with hubspot:
        running = RunningService(
            tmp_path,
            server={"metrics_token": TOKEN},
            targets=[
                {
                    "name": "hubspot",
                    "type": "hubspot",
                    "access_token": "${HUBSPOT_TEST_TOKEN}",
                    "base_url": hubspot.url,
                }
            ],
        )
        running.start_web()
        running.start_worker()
        try:
            status, _ = raw_chunked_post(
                running.port, "/webhooks/sipgate", json.dumps(example_v1).encode()
            )
            assert status == 200
            running.wait_for(
                lambda rows: bool(rows) and rows[0]["targets"]["hubspot"]["status"] == "done"
            )
            found = scrape(running)
        finally:
            running.stop()
        sent = Counter(str(entry.status) for entry in hubspot.request_log)
    counted = {
        dict(labels)["status"]: value
        for (name, labels), value in found.items()
        if name == "sipgate_crm_crm_requests_total" and dict(labels)["target"] == "hubspot"
    }
    assert counted == sent and sum(sent.values()) >= 3  # search, call, … as the fake saw them
    timed = ("sipgate_crm_crm_request_duration_seconds_count", (("target", "hubspot"),))
    assert found[timed] == sum(sent.values())


def test_a_metrics_bind_of_its_own(tmp_path: Path, example_v1: dict[str, Any]) -> None:
    """``server.metrics_bind``: /metrics only there (token still required), nothing else there,
    and the public bind no longer answers /metrics."""
    metrics_port = free_port()
    running = RunningService(
        tmp_path,
        server={"metrics_token": TOKEN, "metrics_bind": f"127.0.0.1:{metrics_port}"},
    )
    metrics_url = f"http://127.0.0.1:{metrics_port}"
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    with running:
        running.start_web()
        status, _ = raw_chunked_post(
            running.port, "/webhooks/sipgate", json.dumps(example_v1).encode()
        )
        assert status == 200  # webhooks on the public bind as before
        scraped = requests.get(f"{metrics_url}/metrics", headers=bearer, timeout=10)
        assert scraped.status_code == 200
        assert "sipgate_crm_webhooks_total" in scraped.text
        assert requests.get(f"{metrics_url}/metrics", timeout=10).status_code == 401
        assert requests.get(f"{running.url}/metrics", headers=bearer, timeout=10).status_code == 404
        assert raw_chunked_post(metrics_port, "/webhooks/sipgate", b"{}")[0] == 404
        for path in ("/healthz", "/console/"):
            assert requests.get(f"{metrics_url}{path}", timeout=10).status_code == 404
        # A Host header naming the metrics port changes nothing: the connection decides.
        spoofed = {**bearer, "Host": f"127.0.0.1:{metrics_port}"}
        assert (
            requests.get(f"{running.url}/metrics", headers=spoofed, timeout=10).status_code == 404
        )
