"""A sipgate webhook all the way to Salesforce: gunicorn + worker + simple-salesforce over HTTPS."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.salesforce_server import SalesforceTestServer
from tests.integration.harness import RunningService, raw_chunked_post

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).parents[1] / "fixtures"


def test_a_call_is_logged_as_a_task_on_the_matching_contact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SalesforceTestServer() as salesforce:
        # The worker process trusts the test server's certificate authority.
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", salesforce.ca_bundle_path)
        monkeypatch.setenv("CURL_CA_BUNDLE", salesforce.ca_bundle_path)
        monkeypatch.setenv("SF_CLIENT_SECRET", salesforce.consumer_secret)
        account = salesforce.add_account(Name="Beispiel GmbH")
        contact = salesforce.add_contact(
            FirstName="Max", LastName="Beispiel", Phone="+49 (211) 635534-00", AccountId=account
        )
        salesforce.add_lead(LastName="Other", Company="Elsewhere", Phone="+43 211 63553400")
        running = RunningService(
            tmp_path,
            targets=[
                {
                    "name": "salesforce",
                    "type": "salesforce",
                    "instance_url": salesforce.instance_url,
                    "auth": {
                        "client_id": salesforce.consumer_key,
                        "client_secret": "${SF_CLIENT_SECRET}",
                        "token_url": f"{salesforce.instance_url}/services/oauth2/token",
                    },
                }
            ],
        )
        running.start_web()
        running.start_worker()
        try:
            body = (FIXTURES / "example-v1.json").read_bytes()
            assert raw_chunked_post(running.port, "/webhooks/sipgate", body)[0] == 200
            rows = running.wait_for(
                lambda rows: bool(rows) and rows[0]["targets"]["salesforce"]["status"] == "done"
            )
        finally:
            running.stop()
        logs = running.log("web") + running.log("worker")
        assert "→ salesforce: done" in logs
        for secret in (salesforce.consumer_secret, "4921163553400", "635534", "Invoice inquiry"):
            assert secret not in logs
        tasks = salesforce.records("Task")
        [call] = [t for t in tasks if t.get("TaskSubtype") == "Call"]
        assert call["Subject"] == "Invoice inquiry and plan change"
        assert call["WhoId"] == contact and call["WhatId"] == account
        assert call["CallObject"] == "pbx-a1b2c3d4-e5f6-7890-abcd-ef1234567890"
        assert call["CallType"] == "Inbound" and call["CallDurationInSeconds"] == 83
        assert call["ActivityDate"] == "2026-04-08"
        follow_ups = sorted(t["Subject"] for t in tasks if t is not call)
        assert follow_ups == [
            "Review the additional package and cancel it if necessary.",
            "Send plan options to the customer by email.",
        ]
        assert rows[0]["targets"]["salesforce"]["refs"]["match"]["status"] == "matched"
        # transcript: full, and it fits the Task's Comments: no note, two API requests per call.
        assert "customer number" in call["Description"]
        assert salesforce.records("ContentNote") == []
        data_requests = [r for r in salesforce.request_log if "/services/data/" in r.path]
        lookups = [
            r
            for r in data_requests
            if "TaskStatus" in str(r.query) or "TaskPriority" in str(r.query)
        ]
        assert len(data_requests) - len(lookups) == 2  # the SOSL search and one composite write
