"""The webhook takes vCons: stored like JSON, deduplicated by uuid, signatures by vcon_keys."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from joserfc import jws
from joserfc.jwk import ECKey

from connector.config.sections import Config
from connector.services import Services
from connector.testing import example_report
from connector.vcon.sign import sign_vcon
from connector.vcon.write import vcon_document
from connector.web.app import create_app
from tests.web.test_webhook import post, stored_calls


@pytest.fixture(scope="module")
def key() -> ECKey:
    return ECKey.generate_key("P-256")


@pytest.fixture
def open_app(write_config: Callable[..., Config]) -> Iterator[Callable[..., Any]]:
    opened: list[Services] = []

    def make(**server: Any) -> tuple[FlaskClient, Services]:
        config = write_config(server={"webhook_path": "/webhooks/sipgate", **server})
        services = Services.open(config)
        opened.append(services)
        return create_app(config, services.ledger).test_client(), services

    yield make
    for services in opened:
        services.close()


def vcon(call_id: str) -> dict[str, Any]:
    return vcon_document(example_report(call_id))


def test_a_vcon_is_accepted_once_and_then_a_duplicate(open_app: Callable[..., Any]) -> None:
    client, services = open_app()
    first = post(client, vcon("vcon-webhook-1"))
    assert first.status_code == 200, first.json
    assert first.json == {"status": "accepted", "call_id": "vcon-webhook-1"}
    again = post(client, vcon("vcon-webhook-1"))
    assert again.json == {"status": "duplicate", "call_id": "vcon-webhook-1"}
    assert stored_calls(services) == 1


def test_a_bad_vcon_gets_422_with_field_paths(open_app: Callable[..., Any]) -> None:
    client, services = open_app()
    document = vcon("vcon-bad-1")
    del document["dialog"][0]["start"]
    response = post(client, document)
    assert response.status_code == 422
    assert response.json["error"] == "invalid_payload"
    assert "dialog.0.start" in response.json["fields"]
    assert stored_calls(services) == 0


def test_signed_vcons_need_a_configured_key(open_app: Callable[..., Any], key: ECKey) -> None:
    other = ECKey.generate_key("P-256")
    client, services = open_app(vcon_keys=[dict(key.as_dict(private=False))])
    good = post(client, sign_vcon(vcon("vcon-signed-1"), key))
    assert good.json == {"status": "accepted", "call_id": "vcon-signed-1"}
    bad = post(client, sign_vcon(vcon("vcon-signed-2"), other))
    assert bad.status_code == 422
    assert bad.json["error"] == "invalid_signature"
    assert stored_calls(services) == 1


def test_a_compact_jws_may_come_as_application_jose(
    open_app: Callable[..., Any], key: ECKey
) -> None:
    client, _ = open_app(vcon_keys=[key.as_pem(private=False).decode()])
    payload = json.dumps(vcon("vcon-compact-1")).encode()
    compact = jws.serialize_compact({"alg": "ES256"}, payload, key)
    response = post(client, compact.encode(), content_type="application/jose")
    assert response.json == {"status": "accepted", "call_id": "vcon-compact-1"}


def test_unsigned_vcons_refused_when_signatures_are_required(
    open_app: Callable[..., Any], key: ECKey
) -> None:
    client, services = open_app(
        vcon_keys=[dict(key.as_dict(private=False))], vcon_require_signature=True
    )
    response = post(client, vcon("vcon-unsigned-1"))
    assert response.status_code == 422
    assert response.json["error"] == "signature_required"
    assert stored_calls(services) == 0


def test_an_encrypted_vcon_is_answered_415(open_app: Callable[..., Any]) -> None:
    client, services = open_app()
    jwe = {"protected": "e30", "recipients": [{}], "iv": "a", "ciphertext": "b", "tag": "c"}
    response = post(client, jwe)
    assert response.status_code == 415
    assert response.json["error"] == "encrypted_vcon"
    assert "not supported" in response.json["fields"]["_body"][0]
    assert stored_calls(services) == 0
