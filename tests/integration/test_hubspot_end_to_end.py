"""A sipgate webhook all the way to HubSpot: gunicorn + worker + the real SDK + the test server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.hubspot_server import DEFAULT_TOKEN, HubSpotTestServer
from tests.integration.harness import RunningService, raw_chunked_post

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).parents[1] / "fixtures"


def test_a_call_is_logged_on_the_matching_contact_with_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hubspot = HubSpotTestServer().start()
    try:
        hubspot.add_property("calls", "hs_call_external_id")
        hubspot.add_owner("7001", "erika.beispiel@example.com", "Erika", "Beispiel")
        contact = hubspot.add_contact(
            {"firstname": "Max", "lastname": "Beispiel", "phone": "0211 63553400"}
        )
        hubspot.add_contact(
            {"firstname": "Other", "lastname": "Country", "phone": "+43 211 63553400"}
        )
        monkeypatch.setenv("HUBSPOT_TEST_TOKEN", DEFAULT_TOKEN)
        running = RunningService(
            tmp_path,
            targets=[
                {
                    "name": "hubspot",
                    "type": "hubspot",
                    "access_token": "${HUBSPOT_TEST_TOKEN}",
                    "base_url": hubspot.url,
                    "owners": {"users": {"1234567w0": "erika.beispiel@example.com"}},
                }
            ],
        )
        running.start_web()
        running.start_worker()
        try:
            body = (FIXTURES / "example-v1.json").read_bytes()
            assert raw_chunked_post(running.port, "/webhooks/sipgate", body)[0] == 200
            rows = running.wait_for(
                lambda rows: bool(rows) and rows[0]["targets"]["hubspot"]["status"] == "done"
            )
        finally:
            running.stop()
        logs = running.log("web") + running.log("worker")
        assert "call pbx-a1b2c3d4-e5f6-7890-abcd-ef1234567890 → hubspot: done" in logs
        for secret in (
            DEFAULT_TOKEN,
            "4921163553400",
            "0211 63553400",
            "Invoice inquiry",
            "erika.beispiel",
        ):
            assert secret not in logs
        [call] = hubspot.objects("calls")
        props = call["properties"]
        assert props["hs_call_title"] == "Invoice inquiry and plan change"
        assert props["hs_call_direction"] == "INBOUND"
        assert props["hs_call_duration"] == "82666"
        assert props["hs_call_from_number"] == "+4921163553400"
        assert props["hubspot_owner_id"] == "7001"
        assert "customer number" in props["hs_call_body"]  # transcript: full, it fits
        linked = {
            (a.to_type, a.to_id, a.type_id) for a in hubspot.associations("calls", call["id"])
        }
        assert ("contacts", contact, 194) in linked
        assert len(linked) == 1  # not the Austrian number with the same national digits
        assert sorted(t["properties"]["hs_task_subject"] for t in hubspot.objects("tasks")) == [
            "Review the additional package and cancel it if necessary.",
            "Send plan options to the customer by email.",
        ]
        assert rows[0]["targets"]["hubspot"]["refs"]["match"]["status"] == "matched"
        # 1 search, 1 call, 1 task batch (+ the owner lookup by e-mail, cached afterwards).
        crm_requests = [r for r in hubspot.request_log if "/owners" not in r.path]
        assert len(crm_requests) == 3
        assert hubspot.non_string_property_values() == []
    finally:
        hubspot.stop()
