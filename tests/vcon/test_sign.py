"""Signed vCons: accepted only when a signature verifies with a trusted key; JWE refused."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import ECKey, OctKey, RSAKey

from connector.config.load import parse_config
from connector.payload import PayloadError, parse_body, report_from_json
from connector.problems import ConfigError
from connector.testing import example_report
from connector.vcon.errors import BadSignature, EncryptedVcon, SignatureRequired
from connector.vcon.sign import VconTrust, load_key, sign_vcon
from connector.vcon.write import vcon_document

LIMIT = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def key() -> ECKey:
    """A throw-away P-256 key, made for this test run only."""
    return ECKey.generate_key("P-256")


def trust(*keys: Any, required: bool = False) -> VconTrust:
    return VconTrust.from_specs(keys, required=required, max_payload_bytes=LIMIT)


def public(key: ECKey | RSAKey) -> dict[str, Any]:
    return dict(key.as_dict(private=False))


def signed_body(key: ECKey, call_id: str = "signed-1") -> bytes:
    return json.dumps(sign_vcon(vcon_document(example_report(call_id)), key)).encode()


def test_a_signed_vcon_verifies_with_a_configured_key(key: ECKey) -> None:
    report = parse_body(signed_body(key), trust(public(key)))
    assert report.call_id == "signed-1"
    assert report.summary == example_report().summary


def test_the_signed_form_is_the_drafts_general_json_serialization(key: ECKey) -> None:
    signed = json.loads(signed_body(key))
    assert set(signed) == {"payload", "signatures"}
    (member,) = signed["signatures"]
    assert member["header"] == {"uuid": "signed-1"}
    protected = json.loads(base64.urlsafe_b64decode(member["protected"] + "=="))
    assert protected == {"alg": "ES256"}


def test_a_pem_public_key_works_as_well(key: ECKey) -> None:
    pem = key.as_pem(private=False).decode()
    assert parse_body(signed_body(key), trust(pem)).call_id == "signed-1"


def test_a_key_that_did_not_sign_is_refused(key: ECKey) -> None:
    other = ECKey.generate_key("P-256")
    with pytest.raises(BadSignature) as info:
        parse_body(signed_body(key), trust(public(other)))
    assert info.value.messages == {
        "signatures": ["No signature verifies with a key in server.vcon_keys."]
    }


def test_any_one_trusted_key_is_enough(key: ECKey) -> None:
    other = ECKey.generate_key("P-256")
    assert parse_body(signed_body(key), trust(public(other), public(key))).call_id == "signed-1"


def test_a_changed_payload_does_not_verify(key: ECKey) -> None:
    signed = json.loads(signed_body(key))
    inner = json.loads(base64.urlsafe_b64decode(signed["payload"] + "==="))
    inner["parties"][0]["tel"] = "tel:+4930123456799"
    signed["payload"] = base64.urlsafe_b64encode(json.dumps(inner).encode()).decode().rstrip("=")
    with pytest.raises(BadSignature):
        parse_body(json.dumps(signed).encode(), trust(public(key)))


def test_the_compact_form_is_accepted(key: ECKey) -> None:
    payload = json.dumps(vcon_document(example_report("compact-1"))).encode()
    compact = jws.serialize_compact({"alg": "ES256"}, payload, key)
    assert parse_body(compact.encode(), trust(public(key))).call_id == "compact-1"
    # Stored bodies were checked when they came in; they parse again without the keys.
    assert report_from_json(compact).call_id == "compact-1"


def test_an_rsa_signature_verifies_with_its_pem(key: ECKey) -> None:
    rsa = RSAKey.generate_key(2048)
    body = json.dumps(sign_vcon(vcon_document(example_report()), rsa, "RS256")).encode()
    assert parse_body(body, trust(rsa.as_pem(private=False).decode())).call_id
    with pytest.raises(BadSignature):
        parse_body(body, trust(public(key)))


def test_an_hmac_signature_never_verifies(key: ECKey) -> None:
    secret = OctKey.generate_key(256)
    payload = json.dumps(vcon_document(example_report())).encode()
    compact = jws.serialize_compact({"alg": "HS256"}, payload, secret)
    with pytest.raises(BadSignature):
        parse_body(compact.encode(), trust(public(key)))


def test_without_keys_a_signed_vcon_is_read_unchecked(key: ECKey) -> None:
    assert parse_body(signed_body(key)).call_id == "signed-1"


def test_an_unsigned_vcon_is_refused_only_when_signatures_are_required(key: ECKey) -> None:
    body = json.dumps(vcon_document(example_report("unsigned-1"))).encode()
    assert parse_body(body, trust(public(key))).call_id == "unsigned-1"
    with pytest.raises(SignatureRequired):
        parse_body(body, trust(public(key), required=True))
    assert parse_body(signed_body(key), trust(public(key), required=True)).call_id


@pytest.mark.parametrize(
    "body",
    [
        {"protected": "eyJhbGciOiJSU0EtT0FFUCJ9", "recipients": [], "iv": "a", "ciphertext": "b"},
        "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d",
    ],
)
def test_an_encrypted_vcon_is_refused(body: Any, key: ECKey) -> None:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body.encode()
    with pytest.raises(EncryptedVcon):
        parse_body(raw, trust(public(key)))


@pytest.mark.parametrize(
    ("signed", "path"),
    [
        ({"payload": "", "signatures": [{"signature": "x"}]}, "payload"),
        ({"payload": "e30", "signatures": []}, "signatures"),
        ({"payload": "e30", "signatures": ["x"]}, "signatures.0"),
        ({"payload": "!!", "signatures": [{"signature": "x"}]}, "payload"),
        ({"payload": "e30", "signatures": [{"signature": "x"}]}, "payload"),  # {} is no vCon
    ],
)
def test_a_malformed_jws_names_the_part(signed: dict[str, Any], path: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse_body(json.dumps(signed).encode())
    assert path in info.value.messages


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kty": "oct", "k": "c2VjcmV0"}, "symmetric"),
        ("not a key", "PEM"),
        (42, "JWK object or a PEM"),
        ({"kty": "EC", "crv": "P-256"}, "JWK"),
    ],
)
def test_unusable_keys_are_named(spec: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_key(spec)


def test_a_private_jwk_is_refused(key: ECKey) -> None:
    with pytest.raises(ValueError, match="private"):
        load_key(dict(key.as_dict(private=True)))


def test_the_configuration_checks_the_keys(tmp_path: Path, key: ECKey) -> None:
    targets = [{"name": "w", "type": "database"}]
    config = parse_config(
        {
            "server": {"vcon_keys": [public(key)], "vcon_require_signature": True},
            "targets": targets,
        },
        base=tmp_path,
    )
    assert config.server.vcon_keys == (public(key),)
    with pytest.raises(ConfigError, match=r"server\.vcon_keys\[0\]: Not a PEM"):
        parse_config({"server": {"vcon_keys": ["nope"]}, "targets": targets}, base=tmp_path)
    with pytest.raises(ConfigError, match="vcon_require_signature"):
        parse_config({"server": {"vcon_require_signature": True}, "targets": targets})


def test_the_committed_signed_fixture_verifies_with_its_public_key() -> None:
    folder = Path(__file__).parents[1] / "fixtures" / "vcon"
    public_key = json.loads((folder / "test-only-public-key.jwk.json").read_text())
    body = (folder / "inbound-call.signed.vcon.json").read_bytes()
    unsigned = (folder / "inbound-call.vcon.json").read_bytes()
    assert parse_body(body, trust(public_key)) == parse_body(unsigned)
    with pytest.raises(BadSignature):
        parse_body(body, trust(public(ECKey.generate_key("P-256"))))
