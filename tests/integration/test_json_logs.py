"""``log_format: json`` end to end: every line the web side and the worker write is a JSON object
with the common fields, delivery lines carry their context, and none holds personal data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import RunningService, raw_chunked_post

pytestmark = pytest.mark.integration

SECRET = "path-secret-0123456789abcdef"


def _lines(running: RunningService, name: str) -> list[dict[str, Any]]:
    text = running.log(name)
    assert text.strip(), f"{name} wrote nothing"
    parsed = []
    for line in text.splitlines():
        record = json.loads(line)  # every line parses
        assert isinstance(record, dict)
        assert {"timestamp", "level", "logger", "message"} <= set(record), line
        parsed.append(record)
    return parsed


def test_every_line_is_json_without_personal_data(
    tmp_path: Path, example_v1: dict[str, Any]
) -> None:
    running = RunningService(tmp_path, log_format="json", server={"secret": SECRET})
    running.start_web()
    running.start_worker()
    try:
        body = json.dumps(example_v1).encode()
        path = f"/webhooks/sipgate/{SECRET}"
        assert raw_chunked_post(running.port, path, body)[0] == 200
        assert raw_chunked_post(running.port, path, body)[0] == 200  # a duplicate
        assert raw_chunked_post(running.port, path, b"{not json")[0] == 400
        running.wait_for(lambda rows: rows and rows[0]["targets"]["warehouse"]["status"] == "done")
    finally:
        running.stop()
    web, worker = _lines(running, "web"), _lines(running, "worker")
    call_id = example_v1["call"]["id"]
    access = [r for r in web if r["logger"] == "gunicorn.access"]  # the access log is JSON too
    posts = [r for r in access if "POST" in r["message"]]
    assert len(posts) == 3
    # Once the body is parsed, the request's lines carry its call id, the access line included.
    assert [r.get("call_id") for r in posts] == [call_id, call_id, None]
    intake = [r for r in web if r["logger"] == "connector.web.webhooks"]
    assert [r["message"].split(" ", 1)[0] for r in intake] == ["accepted", "duplicate"]
    assert all(r["call_id"] == call_id for r in intake)
    assert not any("call_id" in r for r in access if "/readyz" in r["message"])
    delivered = [r for r in worker if r.get("delivery_id") is not None]
    assert delivered and all(r["target"] == "warehouse" for r in delivered)
    assert all(r["call_id"] == example_v1["call"]["id"] for r in delivered)
    everything = running.log("web") + running.log("worker")
    call = example_v1["call"]
    personal = [
        SECRET,
        call["from"],
        call["to"],
        call["users"][0]["fullName"],
        example_v1["assist"]["summary"]["content"][:40],
        example_v1["assist"]["transcription"]["chunks"][0]["content"][:40],
    ]
    assert [p for p in personal if p in everything] == []
