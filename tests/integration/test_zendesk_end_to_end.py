"""A sipgate support call all the way to a Zendesk ticket: gunicorn + worker + the test server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.zendesk_server import AGENT_EMAIL, API_TOKEN, ZendeskTestServer
from tests.integration.harness import RunningService, raw_chunked_post

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).parents[1] / "fixtures"
CALL_ID = "pbx-a1b2c3d4-e5f6-7890-abcd-ef1234567890"
RETRY_AFTER = 2


def test_a_support_call_becomes_one_ticket_after_a_429_and_a_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ZendeskTestServer() as zendesk:
        requester = zendesk.add_user("Max Beispiel", phone="0211 63553400")
        zendesk.add_user("Other Country", phone="+43 211 63553400")
        group = zendesk.add_group("Support")
        zendesk.fail_next(
            r"/api/v2/tickets\.json$",
            429,
            "Too Many Requests",
            method="POST",
            headers={"Retry-After": str(RETRY_AFTER)},
        )
        monkeypatch.setenv("ZENDESK_TEST_TOKEN", API_TOKEN)
        running = RunningService(
            tmp_path,
            targets=[
                {
                    "name": "support",
                    "type": "zendesk",
                    "url": zendesk.url,
                    "email": AGENT_EMAIL,
                    "api_token": "${ZENDESK_TEST_TOKEN}",
                    "tags": ["sipgate"],
                    "group_map": {"1234567w0": group},
                }
            ],
        )
        with running:
            running.start_web()
            running.start_worker()
            body = (FIXTURES / "example-v1.json").read_bytes()
            assert raw_chunked_post(running.port, "/webhooks/sipgate", body)[0] == 200
            rows = running.wait_for(
                lambda rows: bool(rows) and rows[0]["targets"]["support"]["status"] == "done"
            )
            delivery = rows[0]["targets"]["support"]
            assert delivery["attempts"] == 2  # the 429, then the ticket
            posts = zendesk.requests("POST", r"/api/v2/tickets\.json$")
            assert [p.status for p in posts] == [429, 201]
            assert posts[1].time - posts[0].time >= RETRY_AFTER - 0.5  # Retry-After honoured

            replayed = subprocess.run(
                [sys.executable, "-m", "connector", "replay", CALL_ID],
                env=running.env,
                cwd=tmp_path,
                capture_output=True,
                check=True,
            )
            assert b"1 deliveries due again." in replayed.stdout
            running.wait_for(
                lambda rows: (
                    rows[0]["targets"]["support"]["status"] == "done"
                    and rows[0]["targets"]["support"]["attempts"] == 1
                )
            )
        logs = running.log("web") + running.log("worker")
        assert f"call {CALL_ID} → support: done" in logs
        for secret in (API_TOKEN, "4921163553400", "0211 63553400", AGENT_EMAIL):
            assert secret not in logs

        [ticket] = zendesk.tickets()  # the replay found it
        assert len(zendesk.requests("POST", r"/api/v2/tickets\.json$")) == 2
        assert ticket["external_id"] == CALL_ID
        assert ticket["subject"] == "Invoice inquiry and plan change"
        assert str(ticket["requester_id"]) == requester  # not the Austrian number
        assert str(ticket["group_id"]) == group
        assert ticket["tags"] == ["invoice", "additional_package", "plan_change", "sipgate"]
        [note] = zendesk.comments(ticket["id"])
        assert note["public"] is False
        assert "Send plan options to the customer by email." in note["html_body"]
        refs = rows[0]["targets"]["support"]["refs"]
        assert refs["ticket"] == str(ticket["id"])
        assert refs["match"]["status"] == "matched"
