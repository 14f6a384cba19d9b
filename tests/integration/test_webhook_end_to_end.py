"""sipgate webhook → gunicorn → worker → the webhook target → a local receiver; retry and replay."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.webhook_receiver import DEFAULT_SECRET, WebhookReceiver
from tests.integration.harness import RunningService, raw_chunked_post

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).parents[1] / "fixtures"
MAPPING = {
    "fields": {"title": "{{ headline }}", "caller": "{{ remote.e164 }}"},
    "tasks": {"enabled": True, "subject": "{{ item | truncate_to(60) }}", "body": "{{ headline }}"},
}


def _done(rows: list[dict[str, Any]], count: int) -> bool:
    finished = [
        state["status"]
        for row in rows
        for state in row["targets"].values()
        if state["status"] in ("done", "skipped", "dead")
    ]
    return len(finished) == count


def _state(rows: list[dict[str, Any]], call_id: str) -> str | None:
    return next((r["targets"]["n8n"]["status"] for r in rows if r["call_id"] == call_id), None)


def test_calls_reach_the_receiver_signed_filtered_and_mapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbound = json.loads((FIXTURES / "example-v1.json").read_text())
    outbound = json.loads(json.dumps(inbound))
    outbound["call"].update(id="pbx-outbound-0001", direction="OUT")
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "forward.yaml").write_text(yaml.safe_dump(MAPPING))
    monkeypatch.setenv("FORWARDER_TEST_SECRET", DEFAULT_SECRET)
    with WebhookReceiver() as receiver:
        # The first attempt of each delivery fails with a 503: the pipeline must retry it.
        receiver.fail_next("/n8n", 503, method="POST")
        running = RunningService(
            tmp_path,
            targets=[
                {
                    "name": "n8n",
                    "type": "webhook",
                    "url": f"{receiver.url}/n8n",
                    "secret": "${FORWARDER_TEST_SECRET}",
                    "mapping": "forward.yaml",
                    "filters": {"directions": ["IN"]},
                },
                {
                    "name": "reporting",
                    "type": "webhook",
                    "url": f"{receiver.url}/reporting",
                    "secret": "${FORWARDER_TEST_SECRET}",
                    "include_transcript": True,
                },
            ],
        )
        with running:
            running.start_web()
            running.start_worker()
            for document in (inbound, outbound):
                body = json.dumps(document).encode()
                assert raw_chunked_post(running.port, "/webhooks/sipgate", body)[0] == 200
            rows = running.wait_for(lambda rows: _done(rows, 4), timeout=90)
            # A call the receiver refuses (422) goes dead; after the fix, `replay --dead` sends
            # it again under the same webhook-id.
            receiver.fail_next("/n8n", 422, method="POST")
            refused = json.loads(json.dumps(inbound))
            refused["call"]["id"] = "pbx-refused-0001"
            body = json.dumps(refused).encode()
            assert raw_chunked_post(running.port, "/webhooks/sipgate", body)[0] == 200
            running.wait_for(lambda rows: _state(rows, "pbx-refused-0001") == "dead")
            replay = subprocess.run(
                [sys.executable, "-m", "connector", "replay", "--dead"],
                env=running.env,
                cwd=running.folder,
                capture_output=True,
                check=False,
            )
            assert replay.returncode == 0, replay.stderr
            running.wait_for(lambda rows: _state(rows, "pbx-refused-0001") == "done")
        by_call = {row["call_id"]: row["targets"] for row in rows}
        assert by_call["pbx-outbound-0001"]["n8n"]["status"] == "skipped"
        assert by_call["pbx-outbound-0001"]["reporting"]["status"] == "done"
        assert by_call[inbound["call"]["id"]]["n8n"]["status"] == "done"
        assert by_call[inbound["call"]["id"]]["n8n"]["attempts"] >= 2

        n8n = [e for e in receiver.request_log if e.path == "/n8n"]
        assert [e.status for e in n8n] == [503, 204, 422, 204]
        assert n8n[0].webhook_id == n8n[1].webhook_id  # the retry kept the id
        assert n8n[2].webhook_id == n8n[3].webhook_id != n8n[0].webhook_id  # so did the replay
        assert n8n[3].json["call"]["id"] == "pbx-refused-0001"
        assert all(e.verified for e in receiver.request_log)  # refused attempts too
        [forwarded, _replayed] = [d for d in receiver.documents() if d["target"] == "n8n"]
        assert forwarded["call"]["id"] == inbound["call"]["id"]
        assert forwarded["fields"] == {
            "title": "Invoice inquiry and plan change",
            "caller": "+4921163553400",
        }
        assert [t["subject"] for t in forwarded["tasks"]] == [
            "Send plan options to the customer by email.",
            "Review the additional package and cancel it if necessary.",
        ]
        assert "transcript" not in forwarded["call"]
        reported = [d for d in receiver.documents() if d["target"] == "reporting"]
        assert sorted(d["call"]["id"] for d in reported) == sorted(
            [inbound["call"]["id"], "pbx-outbound-0001", "pbx-refused-0001"]
        )
        assert all(d["fields"] == {} for d in reported)  # no mapping: no fields, default tasks
        assert all(len(d["tasks"]) == len(d["call"]["action_items"]) for d in reported)
        assert all("customer number" in d["call"]["transcript"] for d in reported)

        logs = running.log("web") + running.log("worker")
        assert DEFAULT_SECRET not in logs
        assert DEFAULT_SECRET.removeprefix("whsec_") not in logs
        assert "Invoice inquiry" not in logs
