"""The webhook endpoint under Flask's test client (real SQLite ledger, in-memory queue)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select

from connector.config.sections import Config
from connector.ledger.ledger import Ledger
from connector.ledger.tables import PENDING, calls, deliveries
from connector.services import Services
from connector.web.app import create_app

SECRET = "a-long-enough-webhook-secret"


def stored_calls(services: Services) -> int:
    with services.ledger.connection() as conn:
        return int(conn.execute(select(func.count()).select_from(calls)).scalar_one())


def make(write_config: Callable[..., Config], **sections: Any) -> tuple[FlaskClient, Services]:
    config = write_config(**sections)
    services = Services.open(config)
    app: Flask = create_app(config, services.ledger, probes={"queue": services.queue.ping})
    return app.test_client(), services


@pytest.fixture
def client(services: Services) -> FlaskClient:
    return create_app(
        services.config, services.ledger, probes={"queue": services.queue.ping}
    ).test_client()


def post(client: FlaskClient, body: Any, path: str = "/webhooks/sipgate", **kw: Any) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    kw.setdefault("content_type", "application/json")
    return client.post(path, data=data, **kw)


def test_accepts_stores_and_enqueues(
    client: FlaskClient, services: Services, example_v1: dict[str, Any]
) -> None:
    response = post(client, example_v1)
    assert response.status_code == 200
    assert response.json == {"status": "accepted", "call_id": example_v1["call"]["id"]}
    with services.ledger.connection() as conn:
        row = conn.execute(select(calls)).one()
        assert json.loads(row.raw_body) == example_v1  # the raw body, byte for byte
        states = conn.execute(select(deliveries.c.target, deliveries.c.status)).all()
    assert states == [("warehouse", PENDING)]
    # Nothing on the request path touches the queue: the worker's relay reads the ledger.
    assert services.queue.pending() == 0
    assert [d.delivery_id for d in services.ledger.take_due(timedelta(seconds=60))] == [1]


def test_a_repeated_call_id_is_a_duplicate_and_adds_no_work(
    client: FlaskClient, services: Services, example_v1: dict[str, Any]
) -> None:
    post(client, example_v1)
    example_v1["assist"]["callHeadline"]["content"] = "changed"
    response = post(client, example_v1)
    assert response.status_code == 200
    assert response.json["status"] == "duplicate"
    assert stored_calls(services) == 1
    assert len(services.ledger.take_due(timedelta(seconds=60))) == 1


def test_legacy_payload_is_accepted(client: FlaskClient, example_legacy: dict[str, Any]) -> None:
    assert post(client, example_legacy).json["status"] == "accepted"


def test_chunked_body_is_read_whole(
    client: FlaskClient, services: Services, example_v1: dict[str, Any]
) -> None:
    body = json.dumps(example_v1).encode()
    response = client.post(
        "/webhooks/sipgate",
        input_stream=io.BytesIO(body),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},  # what gunicorn sets for chunked
    )
    assert response.status_code == 200, response.json
    assert stored_calls(services) == 1


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        (b"{not json", "application/json", 400, "invalid_json"),
        (b"\xff\xfe\x00", "application/json", 400, "invalid_json"),
        (b"", "application/json", 400, "empty_body"),
        (b"{}", "text/html", 415, "unsupported_media_type"),
        (b"[1, 2]", "application/json", 422, "invalid_payload"),
        (b'{"version": "9", "call": {}}', "application/json", 422, "unsupported_version"),
        (b'{"version": "1", "call": {"id": "x"}}', "application/json", 422, "invalid_payload"),
    ],
)
def test_bad_input_gets_a_clear_error_and_stores_nothing(
    client: FlaskClient, services: Services, body: bytes, content_type: str, status: int, error: str
) -> None:
    response = client.post("/webhooks/sipgate", data=body, content_type=content_type)
    assert response.status_code == status
    assert response.json["error"] == error
    assert response.json["message"]
    assert stored_calls(services) == 0


def test_schema_errors_list_field_paths(client: FlaskClient, example_v1: dict[str, Any]) -> None:
    example_v1["call"]["direction"] = "UP"
    response = post(client, example_v1)
    assert response.status_code == 422
    assert response.json["fields"] == {"call.direction": ["Must be one of: IN, OUT."]}


def test_content_type_may_be_missing(client: FlaskClient, example_v1: dict[str, Any]) -> None:
    response = client.post("/webhooks/sipgate", data=json.dumps(example_v1))
    assert response.status_code == 200


def test_oversized_body_is_413(
    write_config: Callable[..., Config], example_v1: dict[str, Any]
) -> None:
    client, services = make(write_config, server={"max_body_bytes": 2048})
    example_v1["assist"]["transcription"]["content"] = "x" * 4000
    assert post(client, example_v1).status_code == 413
    assert stored_calls(services) == 0


def test_oversized_chunked_body_is_413_not_truncated(
    write_config: Callable[..., Config], example_v1: dict[str, Any]
) -> None:
    client, services = make(write_config, server={"max_body_bytes": 2048})
    example_v1["assist"]["transcription"]["content"] = "x" * 4000
    response = client.post(
        "/webhooks/sipgate",
        input_stream=io.BytesIO(json.dumps(example_v1).encode()),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert stored_calls(services) == 0


def test_unknown_paths_and_methods_answer_json(client: FlaskClient) -> None:
    assert client.get("/webhooks/sipgate").status_code == 405
    assert client.post("/elsewhere").json["error"] == "not_found"


def test_configured_path(write_config: Callable[..., Config], example_v1: dict[str, Any]) -> None:
    client, _ = make(write_config, server={"webhook_path": "/hooks/ci"})
    assert post(client, example_v1, "/hooks/ci").status_code == 200
    assert post(client, example_v1, "/webhooks/sipgate").status_code == 404


# --- sender checks ----------------------------------------------------------------------------


def test_allowed_ips(write_config: Callable[..., Config], example_v1: dict[str, Any]) -> None:
    client, services = make(
        write_config, server={"allowed_ips": ["217.116.118.254", "212.9.46.32/32"]}
    )
    rejected = post(client, example_v1, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert rejected.status_code == 403
    assert "217" not in rejected.get_data(as_text=True)  # no detail
    accepted = post(client, example_v1, environ_base={"REMOTE_ADDR": "212.9.46.32"})
    assert accepted.status_code == 200
    assert stored_calls(services) == 1


def test_forwarded_for_is_ignored_without_trusted_proxies(
    write_config: Callable[..., Config], example_v1: dict[str, Any]
) -> None:
    client, _ = make(write_config, server={"allowed_ips": ["217.116.118.254"]})
    spoofed = post(
        client,
        example_v1,
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
        headers={"X-Forwarded-For": "217.116.118.254"},
    )
    assert spoofed.status_code == 403


def test_one_trusted_proxy_uses_the_address_it_appended(
    write_config: Callable[..., Config], example_v1: dict[str, Any]
) -> None:
    client, _ = make(
        write_config,
        server={
            "allowed_ips": ["217.116.118.254"],
            "trusted_proxies": 1,
            "proxy_addresses": ["10.0.0.0/24"],
        },
    )
    # The client prepended a forged entry; our proxy appended the address it really saw.
    spoofed = post(
        client,
        example_v1,
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
        headers={"X-Forwarded-For": "217.116.118.254, 198.51.100.7"},
    )
    assert spoofed.status_code == 403
    genuine = post(
        client,
        example_v1,
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
        headers={"X-Forwarded-For": "217.116.118.254"},
    )
    assert genuine.status_code == 200
    # The same header on a connection that does not come from the proxy counts for nothing.
    direct = post(
        client,
        example_v1,
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
        headers={"X-Forwarded-For": "217.116.118.254"},
    )
    assert direct.status_code == 403


def test_secret_in_path_or_bearer_header(
    write_config: Callable[..., Config], example_v1: dict[str, Any]
) -> None:
    client, services = make(write_config, server={"secret": SECRET})
    assert post(client, example_v1).status_code == 403
    assert post(client, example_v1, f"/webhooks/sipgate/{SECRET}x").status_code == 403
    assert post(client, example_v1, headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert stored_calls(services) == 0
    assert post(client, example_v1, f"/webhooks/sipgate/{SECRET}").status_code == 200
    example_v1["call"]["id"] = "second-call"
    ok = post(client, example_v1, headers={"Authorization": f"Bearer {SECRET}"})
    assert ok.status_code == 200


def test_secret_segment_without_configured_secret_is_refused(
    client: FlaskClient, example_v1: dict[str, Any]
) -> None:
    assert post(client, example_v1, "/webhooks/sipgate/anything").status_code == 403


def test_storage_outage_is_503_not_500(
    client: FlaskClient, services: Services, example_v1: dict[str, Any]
) -> None:
    with services.ledger.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE deliveries")
    response = post(client, example_v1)
    assert response.status_code == 503
    assert response.json["error"] == "service_unavailable"


def test_health_and_readiness(client: FlaskClient, services: Services) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json == {"status": "ok", "storage": "ok", "queue": "ok"}


def test_readiness_fails_when_storage_is_unreachable(tmp_path: Any, services: Services) -> None:
    broken = Ledger(create_engine(f"sqlite:///{tmp_path / 'missing' / 'ledger.db'}"))
    app = create_app(services.config, broken, probes={"queue": services.queue.ping})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["storage"].startswith("unavailable")
    assert response.json["queue"] == "ok"


def test_deeply_nested_json_is_a_client_error(client: FlaskClient, services: Services) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    response = client.post("/webhooks/sipgate", data=body, content_type="application/json")
    assert response.status_code == 400
    assert stored_calls(services) == 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    mutation=st.dictionaries(
        st.sampled_from(["version", "call", "assist", "callHeadline", "channel", "extra"]),
        json_values,
        max_size=3,
    ),
    call_part=st.dictionaries(
        st.sampled_from(
            ["id", "from", "to", "startTime", "endTime", "duration", "direction", "users"]
        ),
        json_values,
        max_size=3,
    ),
)
def test_client_input_never_causes_a_500(
    client: FlaskClient,
    example_v1: dict[str, Any],
    mutation: dict[str, Any],
    call_part: dict[str, Any],
) -> None:
    document = {**example_v1, **mutation}
    if isinstance(document.get("call"), dict):
        document["call"] = {**document["call"], **call_part}
    response = post(client, document)
    assert response.status_code in (200, 400, 422), response.get_data(as_text=True)
    assert response.is_json


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (lambda d: d["call"].update(duration=10**17), 422),
        (lambda d: d["call"].update(startTime="0001-01-01T00:30:00+01:00"), 422),
        (lambda d: d["call"].update(startTime="9999-12-31T23:30:00-05:00"), 422),
        (lambda d: d["call"].update(id="evil\nERROR forged log line"), 422),
        (lambda d: d["call"].update(id="\ud800"), 422),
        (lambda d: d["assist"]["summary"].update(content="nul \u0000 inside"), 422),
        (lambda d: d["assist"]["summary"].update(content="a real emoji \U0001f600 is fine"), 200),
    ],
)
def test_values_no_layer_can_store_are_client_errors(
    client: FlaskClient, services: Services, example_v1: dict[str, Any], mutate: Any, status: int
) -> None:
    mutate(example_v1)
    body = json.dumps(example_v1).encode()  # ensure_ascii: non-ASCII travels as \\u escapes
    response = client.post("/webhooks/sipgate", data=body, content_type="application/json")
    assert response.status_code == status, response.json
    assert stored_calls(services) == (1 if status == 200 else 0)


def test_a_huge_integer_literal_is_a_400(client: FlaskClient) -> None:
    body = b'{"version": "1", "call": {"duration": ' + b"9" * 5000 + b"}}"
    assert (
        client.post("/webhooks/sipgate", data=body, content_type="application/json").status_code
        == 400
    )


def test_legacy_summary_of_the_wrong_shape_is_tolerated(
    client: FlaskClient, example_legacy: dict[str, Any]
) -> None:
    example_legacy["summary"] = {"keyPoints": 5, "topics": "x", "content": "ok"}
    assert post(client, example_legacy).status_code == 200


def test_ipv4_senders_on_a_dual_stack_socket_match_ipv4_networks(
    write_config: Callable[..., Config], example_v1: dict[str, Any]
) -> None:
    client, _ = make(write_config, server={"allowed_ips": ["217.116.118.254"]})
    mapped = post(client, example_v1, environ_base={"REMOTE_ADDR": "::ffff:217.116.118.254"})
    assert mapped.status_code == 200
    other = post(client, example_v1, environ_base={"REMOTE_ADDR": "::ffff:198.51.100.7"})
    assert other.status_code == 403


def test_readiness_does_not_depend_on_the_queue(
    services: Services, write_config: Callable[..., Config]
) -> None:
    from connector.delivery.queue import DeliveryQueue, make_huey

    broken_queue = DeliveryQueue(make_huey("redis://127.0.0.1:9/0"))  # nothing listens there
    app = create_app(services.config, services.ledger, probes={"queue": broken_queue.ping})
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.json["queue"].startswith("unavailable")
