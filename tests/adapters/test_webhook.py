"""The webhook target: contract, signing, the v1 document and its schema, error mapping."""

from __future__ import annotations

import base64
import fnmatch
import json
import tomllib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner
from marshmallow import ValidationError
from standardwebhooks import Webhook

from connector.adapters import (
    Adapter,
    DeliveryJob,
    Journal,
    PermanentError,
    RetryableError,
    TaskSpec,
    parse_stored,
)
from connector.adapters.webhook import SCHEMA_ID, WebhookAdapter, delivery_id, json_schema
from connector.cli import main
from connector.testing import AdapterContract, example_report, minimal_report
from tests.fakes.webhook_receiver import DEFAULT_SECRET, WebhookReceiver
from tests.integration.harness import free_port
from tests.support.metrics import crm_requests, logged_statuses

OTHER_SECRET = "whsec_" + base64.b64encode(b"another key, 32 bytes long......").decode()
NOW = datetime(2026, 4, 8, 9, 30, tzinfo=UTC)
ROOT = Path(__file__).parents[2]


def make(url: str, name: str = "n8n", **options: Any) -> WebhookAdapter:
    loaded = WebhookAdapter.config_schema().load(
        {"url": url, "secret": DEFAULT_SECRET, "read_timeout": 1.0, **options}
    )
    return WebhookAdapter(name, loaded)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
def adapter(receiver: WebhookReceiver) -> Iterator[WebhookAdapter]:
    made = make(f"{receiver.url}/hooks/calls")
    yield made
    made.close()


class TestWebhookContract(AdapterContract):
    type_name = "webhook"

    @pytest.fixture(autouse=True)
    def _receiver(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver

    def make_adapter(self, tmp_path: Path) -> Adapter:
        return make(f"{self.receiver.url}/hooks/calls")

    def make_unreachable_adapter(self, tmp_path: Path) -> Adapter:
        return make(f"http://127.0.0.1:{free_port()}/hooks/calls")

    def count_logged_calls(self, adapter: Adapter, call_id: str) -> int:
        return self.receiver.count_calls(call_id)

    def fail_next_write(self, adapter: Adapter, status: int, echo: str) -> bool:
        self.receiver.fail_next("/hooks/calls", status, {"error": echo}, method="POST")
        return True

    def lose_next_write_answer(self, adapter: Adapter) -> bool:
        self.receiver.delay_after_commit("/hooks/calls", 3.0, method="POST")
        return True

    def secrets(self, adapter: Adapter) -> list[str]:
        assert isinstance(adapter, WebhookAdapter)
        return [adapter.options.secret]


# --- signing ---------------------------------------------------------------------------------


def test_every_request_carries_a_signature_the_library_verifies(
    adapter: WebhookAdapter, receiver: WebhookReceiver
) -> None:
    adapter.write(DeliveryJob(example_report()), Journal())
    [entry] = receiver.request_log
    assert entry.verified and entry.status == 204
    assert entry.content_type == "application/json"
    headers = {
        "webhook-id": entry.webhook_id or "",
        "webhook-timestamp": entry.webhook_timestamp or "",
        "webhook-signature": entry.webhook_signature or "",
    }
    assert entry.webhook_signature and entry.webhook_signature.startswith("v1,")
    # Verified again here, independently of the receiver, on the exact bytes sent.
    assert Webhook(DEFAULT_SECRET).verify(entry.body, headers) == entry.json
    with pytest.raises(Exception, match="signature"):
        Webhook(OTHER_SECRET).verify(entry.body, headers)
    with pytest.raises(Exception, match="signature"):
        Webhook(DEFAULT_SECRET).verify(entry.body.replace(b"Invoice", b"Involce"), headers)


def test_a_wrong_secret_fails_verification_and_the_error_names_the_secret(
    receiver: WebhookReceiver,
) -> None:
    wrong = make(f"{receiver.url}/hooks/calls", secret=OTHER_SECRET)
    try:
        with pytest.raises(PermanentError) as caught:
            wrong.write(DeliveryJob(example_report()), Journal())
    finally:
        wrong.close()
    assert not isinstance(caught.value, RetryableError)
    assert "HTTP 401" in str(caught.value) and "secret option" in str(caught.value)
    assert OTHER_SECRET not in str(caught.value)
    [entry] = receiver.request_log
    assert entry.status == 401 and not entry.verified
    assert receiver.count_calls(example_report().call_id) == 0


def test_the_receiver_checks_the_signature_before_an_injected_fault(
    adapter: WebhookAdapter, receiver: WebhookReceiver
) -> None:
    receiver.fail_next("/hooks/calls", 503, method="POST")
    wrong = make(f"{receiver.url}/hooks/calls", secret=OTHER_SECRET)
    try:
        with pytest.raises(PermanentError, match="HTTP 401"):
            wrong.write(DeliveryJob(example_report()), Journal())
    finally:
        wrong.close()
    with pytest.raises(RetryableError, match="HTTP 503"):  # the fault is still there …
        adapter.write(DeliveryJob(example_report()), Journal())
    adapter.write(DeliveryJob(example_report()), Journal())  # … and used up
    refused, failed, accepted = receiver.request_log
    assert (refused.status, refused.verified, refused.injected, refused.json) == (
        401,
        False,
        False,
        None,
    )
    assert (failed.status, failed.verified, failed.injected) == (503, True, True)
    assert failed.json == accepted.json and accepted.status == 204
    assert receiver.accepted() == [accepted]


def test_the_timestamp_is_the_send_time(receiver: WebhookReceiver) -> None:
    berlin = timezone(timedelta(hours=2))  # a clock in another zone signs the same instant
    moments = iter([NOW.astimezone(berlin), datetime(2026, 4, 8, 9, 31, 5, tzinfo=UTC)])
    loaded = WebhookAdapter.config_schema().load(
        {"url": f"{receiver.url}/in", "secret": DEFAULT_SECRET}
    )
    adapter = WebhookAdapter("n8n", loaded, clock=lambda: next(moments))
    job = DeliveryJob(example_report())
    first = adapter.signed_request(job)
    second = adapter.signed_request(job)
    adapter.close()
    assert first[2]["webhook-timestamp"] == str(int(NOW.timestamp()))
    assert int(second[2]["webhook-timestamp"]) - int(first[2]["webhook-timestamp"]) == 65
    assert first[2]["webhook-signature"] != second[2]["webhook-signature"]
    assert first[:2] == second[:2]  # same id, same bytes
    verifier = Webhook(DEFAULT_SECRET)
    expected = verifier.sign(first[0], NOW, first[1].decode())
    assert first[2]["webhook-signature"] == expected


# --- the webhook-id across attempts ----------------------------------------------------------


def test_the_webhook_id_and_body_stay_the_same_across_attempts(
    adapter: WebhookAdapter, receiver: WebhookReceiver
) -> None:
    job = DeliveryJob(example_report("call-retried-1"))
    receiver.fail_next("/hooks/calls", 503, method="POST")
    with pytest.raises(RetryableError):
        adapter.write(job, Journal())
    result = adapter.write(job, Journal())
    first, second = receiver.request_log
    assert first.status == 503 and second.status == 204
    assert first.verified and second.verified  # the refused attempt was signed as well
    assert first.webhook_id == second.webhook_id == result.refs["webhook_id"]
    assert first.body == second.body
    assert second.json["delivery"]["id"] == second.webhook_id
    assert receiver.count_calls("call-retried-1") == 1


def test_the_webhook_id_differs_by_call_and_by_target() -> None:
    assert delivery_id("n8n", "c1") == delivery_id("n8n", "c1")
    ids = {delivery_id("n8n", "c1"), delivery_id("n8n", "c2"), delivery_id("zapier", "c1")}
    assert len(ids) == 3
    assert all(i.startswith("msg_") and "c1" not in i for i in ids)


# --- error answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 404, 409, 410, 413, 422])
def test_client_errors_are_permanent(
    adapter: WebhookAdapter, receiver: WebhookReceiver, status: int
) -> None:
    receiver.fail_next("/hooks/calls", status, method="POST")
    with pytest.raises(PermanentError) as caught:
        adapter.write(DeliveryJob(example_report()), Journal())
    assert not isinstance(caught.value, RetryableError)
    assert f"HTTP {status}" in str(caught.value)


@pytest.mark.parametrize("status", [408, 425, 500, 502, 503, 504])
def test_temporary_answers_are_retried(
    adapter: WebhookAdapter, receiver: WebhookReceiver, status: int
) -> None:
    receiver.fail_next("/hooks/calls", status, method="POST")
    with pytest.raises(RetryableError):
        adapter.write(DeliveryJob(example_report()), Journal())


def test_every_attempt_is_counted_under_the_targets_name(receiver: WebhookReceiver) -> None:
    adapter = make(f"{receiver.url}/hooks/calls", name="forward-counted")
    receiver.fail_next("/hooks/calls", 503, method="POST")
    with pytest.raises(RetryableError):
        adapter.write(DeliveryJob(example_report()), Journal())
    adapter.write(DeliveryJob(example_report()), Journal())
    adapter.close()
    answered = [entry.status for entry in receiver.request_log if not entry.lost]
    assert crm_requests("forward-counted") == logged_statuses(answered)
    assert crm_requests("forward-counted")["503"] == 1


def test_429_honours_retry_after(adapter: WebhookAdapter, receiver: WebhookReceiver) -> None:
    receiver.fail_next("/hooks/calls", 429, method="POST", headers={"Retry-After": "17"})
    with pytest.raises(RetryableError) as caught:
        adapter.write(DeliveryJob(example_report()), Journal())
    assert caught.value.retry_after == 17


def test_403_is_permanent_and_names_the_secret(
    adapter: WebhookAdapter, receiver: WebhookReceiver
) -> None:
    receiver.fail_next("/hooks/calls", 403, method="POST")
    with pytest.raises(PermanentError, match="secret"):
        adapter.write(DeliveryJob(example_report()), Journal())


def test_a_timeout_is_retried_and_the_retry_is_deduplicated(
    adapter: WebhookAdapter, receiver: WebhookReceiver
) -> None:
    job = DeliveryJob(example_report("call-timeout-1"))
    receiver.delay_after_commit("/hooks/calls", 3.0, method="POST")
    with pytest.raises(RetryableError, match="outcome unknown"):
        adapter.write(job, Journal())
    adapter.write(job, Journal())
    assert len(receiver.accepted()) == 2  # the receiver got it twice …
    assert receiver.count_calls("call-timeout-1") == 1  # … and dedupes on webhook-id


def test_an_error_body_is_not_repeated(adapter: WebhookAdapter, receiver: WebhookReceiver) -> None:
    receiver.fail_next("/hooks/calls", 422, {"error": "Erika Mustermann is unknown"})
    with pytest.raises(PermanentError) as caught:
        adapter.write(DeliveryJob(example_report()), Journal())
    assert "Erika" not in str(caught.value) and "/hooks" not in str(caught.value)


# --- the document and its schema -------------------------------------------------------------


def _validate(document: dict[str, Any]) -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    validator.validate(document)


def _declared(schema: dict[str, Any], document: Any, where: str = "") -> None:
    """Every key the document has is declared in the schema (the published schema allows
    unknown keys for receivers' sake; this keeps the code from drifting away from it)."""
    if isinstance(document, dict) and "properties" in schema:
        for key, value in document.items():
            assert key in schema["properties"], f"{where}.{key} is not in the schema"
            _declared(schema["properties"][key], value, f"{where}.{key}")
    elif isinstance(document, list) and "items" in schema:
        for item in document:
            _declared(schema["items"], item, f"{where}[]")


def _sent(adapter: WebhookAdapter, receiver: WebhookReceiver, job: DeliveryJob) -> dict[str, Any]:
    receiver.clear_request_log()
    adapter.write(job, Journal())
    [entry] = receiver.accepted()
    document: dict[str, Any] = entry.json
    return document


def test_the_document_of_the_example_call(
    adapter: WebhookAdapter, receiver: WebhookReceiver
) -> None:
    caller = parse_stored("+49 211 63553400", "DE")
    job = DeliveryJob(
        example_report(),
        fields={"subject": "Call: Invoice inquiry"},
        tasks=(TaskSpec("Send the offer", "Plan options.", date(2026, 4, 10), "high", "7001"),),
        owner_id="7001",
        remote=caller,
        options={"match_status": "unmatched", "language": "de"},
    )
    document = _sent(adapter, receiver, job)
    _validate(document)
    _declared(json_schema(), document)
    assert document["schema"] == SCHEMA_ID == json_schema()["$id"]
    assert document["target"] == "n8n"
    assert document["delivery"] == {
        "id": delivery_id("n8n", job.report.call_id),
        "owner_id": "7001",
        "language": "de",
    }
    call = document["call"]
    assert call["id"] == "pbx-a1b2c3d4-e5f6-7890-abcd-ef1234567890"
    assert call["headline"] == "Invoice inquiry and plan change"
    assert call["direction"] == "IN"
    assert call["duration_ms"] == 82666
    assert call["start_time"] == "2026-04-08T09:22:41.663000Z"
    assert call["remote_number"] == "+4921163553400"
    assert call["channel"] == {"id": call["channel"]["id"], "name": "Support Channel"}
    assert call["topics"] == ["Invoice", "Additional package", "Plan change"]
    assert len(call["action_items"]) == 2
    assert "transcript" not in call and "transcript_chunks" not in call
    assert document["fields"] == {"subject": "Call: Invoice inquiry"}
    assert document["tasks"] == [
        {
            "subject": "Send the offer",
            "body": "Plan options.",
            "due": "2026-04-10",
            "priority": "high",
            "owner_id": "7001",
        }
    ]


def test_the_transcript_is_sent_only_when_asked(receiver: WebhookReceiver) -> None:
    adapter = make(f"{receiver.url}/hooks/calls", include_transcript=True)
    try:
        document = _sent(adapter, receiver, DeliveryJob(example_report()))
    finally:
        adapter.close()
    _validate(document)
    _declared(json_schema(), document)
    call = document["call"]
    assert "customer number" in call["transcript"]
    assert [c["speaker"] for c in call["transcript_chunks"]] == [
        "CALLER",
        "CALLEE",
        "CALLER",
        "CALLEE",
    ]


def test_a_minimal_call_validates(adapter: WebhookAdapter, receiver: WebhookReceiver) -> None:
    document = _sent(adapter, receiver, DeliveryJob(minimal_report()))
    _validate(document)
    assert document["call"]["remote_number"] is None
    assert document["call"]["end_time"] is None and document["call"]["channel"] is None
    assert document["fields"] == {} and document["tasks"] == []


def test_the_schema_rejects_what_v1_is_not() -> None:
    document = json.loads(json.dumps(_document_of(example_report())))
    broken = {**document, "call": {**document["call"], "direction": "SIDEWAYS"}}
    with pytest.raises(jsonschema.ValidationError):
        _validate(broken)
    with pytest.raises(jsonschema.ValidationError):
        _validate({k: v for k, v in document.items() if k != "delivery"})


def _document_of(report: Any) -> dict[str, Any]:
    from connector.adapters.webhook import call_document

    return call_document(DeliveryJob(report), "n8n", include_transcript=False)


def test_the_cli_prints_the_schema() -> None:
    out = CliRunner().invoke(main, ["schema", "forwarder"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == json_schema()


def test_the_schema_file_is_shipped_as_package_data() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = project["tool"]["setuptools"]["package-data"]["connector"]
    shipped = "adapters/webhook/call.v1.schema.json"
    assert (ROOT / "connector" / shipped).is_file()
    assert any(fnmatch.fnmatchcase(shipped, pattern) for pattern in globs)


def test_the_adapters_command_lists_the_target() -> None:
    out = CliRunner().invoke(main, ["adapters"])
    assert out.exit_code == 0, out.output
    listed = dict(line.split(maxsplit=1) for line in out.output.splitlines() if line.strip())
    assert listed["webhook"] == "connector.adapters.webhook:WebhookAdapter"


def test_describe_write_shows_the_document_and_sends_nothing(
    adapter: WebhookAdapter, receiver: WebhookReceiver
) -> None:
    job = replace(DeliveryJob(example_report()), fields={"subject": "x"})
    [operation] = adapter.describe_write(job)
    assert operation["webhook_id"] == delivery_id("n8n", job.report.call_id)
    assert operation["document"]["fields"] == {"subject": "x"}
    assert receiver.request_log == []


# --- options and check -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [
        "c2VjcmV0LXdpdGhvdXQtcHJlZml4LWF0LWFsbC0xMjM0NTY=",  # no whsec_
        "whsec_not base64 at all!!",
        "whsec_" + base64.b64encode(b"too short").decode(),
    ],
)
def test_a_secret_that_is_not_a_standard_webhooks_key_is_rejected(secret: str) -> None:
    with pytest.raises(ValidationError) as caught:
        WebhookAdapter.config_schema().load(
            {"url": "https://hooks.example.invalid/", "secret": secret}
        )
    assert "secret" in caught.value.messages
    assert secret not in json.dumps(caught.value.messages)


def test_the_url_must_be_http(receiver: WebhookReceiver) -> None:
    with pytest.raises(ValidationError) as caught:
        WebhookAdapter.config_schema().load(
            {"url": "ftp://example.invalid/", "secret": DEFAULT_SECRET}
        )
    assert "url" in caught.value.messages


def test_check_asks_the_receiver_with_options(
    adapter: WebhookAdapter, receiver: WebhookReceiver
) -> None:
    results = adapter.check()
    assert all(r.ok for r in results) and len(results) == 2
    assert [e.method for e in receiver.request_log] == ["OPTIONS"]
    assert receiver.count_calls(example_report().call_id) == 0  # the check sends no call


@pytest.mark.parametrize("status", [404, 410, 500])
def test_check_fails_when_the_url_names_nothing_or_the_receiver_fails(
    adapter: WebhookAdapter, receiver: WebhookReceiver, status: int
) -> None:
    receiver.fail_next("/hooks/calls", status, method="OPTIONS")
    results = adapter.check()
    assert not results[-1].ok and f"HTTP {status}" in results[-1].message
    assert DEFAULT_SECRET not in " ".join(r.message for r in results)


def test_check_accepts_a_receiver_that_only_takes_post(
    adapter: WebhookAdapter, receiver: WebhookReceiver
) -> None:
    receiver.fail_next("/hooks/calls", 405, method="OPTIONS")
    assert all(r.ok for r in adapter.check())


# --- the README's receiver -------------------------------------------------------------------

README = ROOT / "README.md"


def _readme_receiver() -> str:
    section = README.read_text().split("#### The `webhook` target", 1)[1].split("\n#### ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_receiver_verifies_and_dedupes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_SIGNING_SECRET", DEFAULT_SECRET)
    namespace: dict[str, Any] = {"__name__": "readme_receiver"}  # Flask's import name
    exec(compile(_readme_receiver(), "README.md", "exec"), namespace)
    client = namespace["app"].test_client()
    path = "/webhook/sipgate-calls"

    def signed(secret: str) -> tuple[bytes, dict[str, str]]:
        loaded = WebhookAdapter.config_schema().load(
            {"url": f"http://127.0.0.1:9{path}", "secret": secret}
        )
        adapter = WebhookAdapter("n8n", loaded)
        _, body, headers = adapter.signed_request(DeliveryJob(example_report()))
        adapter.close()
        return body, headers

    body, headers = signed(DEFAULT_SECRET)
    for _ in range(2):  # an attempt and its retry
        assert client.post(path, data=body, headers=headers).status_code == 204
    assert [c["call"]["id"] for c in namespace["calls"]] == [example_report().call_id]
    tampered = body.replace(b"Invoice", b"Involce")
    assert client.post(path, data=tampered, headers=headers).status_code == 401
    assert client.post(path, data=body, headers=signed(OTHER_SECRET)[1]).status_code == 401
    assert len(namespace["calls"]) == 1
