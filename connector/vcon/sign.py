"""Signed vCons: the JWS forms of draft-ietf-vcon-vcon-core, opened and checked against keys.

A signed vCon is a JWS whose payload is the unsigned vCon: the general JSON serialization the draft
prescribes (``{"payload": …, "signatures": [...]}``), the flattened one, or the compact form. With
trusted keys (``server.vcon_keys``) it is accepted only when at least one of its signatures
verifies with one of them, using an asymmetric algorithm; without keys its payload is read as it
is (the webhook's own secret and address checks still apply). An encrypted (JWE) vCon is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key

from connector.report import NotJson, PayloadError, decode_json
from connector.vcon.errors import BadSignature, EncryptedVcon

__all__ = [
    "ALGORITHMS",
    "VconTrust",
    "compact_form",
    "is_encrypted",
    "is_signed",
    "load_key",
    "open_signed",
    "sign_vcon",
]

#: Public-key algorithms only: a trusted key is public, so HMAC and "none" never verify.
ALGORITHMS = (
    "ES256",
    "ES384",
    "ES512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "EdDSA",
)
_SEGMENT = r"[A-Za-z0-9_-]*"
_COMPACT_JWS = re.compile(rf"^{_SEGMENT}\.{_SEGMENT}\.{_SEGMENT}\Z")
_COMPACT_JWE = re.compile(rf"^{_SEGMENT}(?:\.{_SEGMENT}){{4}}\Z")
#: x5c certificate chains sit in the headers; the draft puts them there.
_MAX_HEADER_BYTES = 64 * 1024


def load_key(spec: Any) -> Key:
    """The public key in `spec`: a JWK object or a PEM ``PUBLIC KEY`` text.

    Raises `ValueError` with a readable message for anything else, a private or a symmetric key.
    """
    if isinstance(spec, Mapping):
        if spec.get("kty") == "oct":
            raise ValueError("A symmetric (oct) key cannot be a trusted vCon key.")
        if "d" in spec:
            raise ValueError("This JWK holds a private key; configure its public part only.")
        try:
            return JWKRegistry.import_key(dict(spec))
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"Not a usable JWK public key: {exc}") from exc
    if isinstance(spec, str):
        try:
            public = serialization.load_pem_public_key(spec.strip().encode())
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ValueError("Not a PEM public key (-----BEGIN PUBLIC KEY-----).") from exc
        kty: Any
        if isinstance(public, rsa.RSAPublicKey):
            kty = "RSA"
        elif isinstance(public, ec.EllipticCurvePublicKey):
            kty = "EC"
        elif isinstance(public, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            kty = "OKP"
        else:
            raise ValueError(f"Unsupported public key type {type(public).__name__}.")
        return JWKRegistry.import_key(spec.strip(), kty)
    raise ValueError("A vCon key must be a JWK object or a PEM string.")


@dataclass(frozen=True)
class VconTrust:
    """The keys whose signatures the webhook trusts, and whether unsigned vCons are refused."""

    keys: tuple[Key, ...] = ()
    required: bool = False
    max_payload_bytes: int = 5 * 1024 * 1024

    @classmethod
    def from_specs(
        cls, specs: Sequence[Any], *, required: bool = False, max_payload_bytes: int
    ) -> VconTrust:
        """Load every key in `specs` (JWK objects or PEM strings); `ValueError` on a bad one."""
        return cls(tuple(load_key(s) for s in specs), required, max_payload_bytes)

    def verifies(self, payload: str, signature: Mapping[str, Any]) -> bool:
        """Whether one signature member (``protected``/``header``/``signature``) over `payload`
        verifies with one of the keys."""
        registry = jws.JWSRegistry(algorithms=ALGORITHMS, strict_check_header=False)
        registry.max_header_length = _MAX_HEADER_BYTES
        registry.max_payload_length = self.max_payload_bytes
        flattened: Any = {"payload": payload, **signature}
        for key in self.keys:
            try:
                jws.deserialize_json(flattened, key, registry=registry)
            except (JoseError, ValueError, TypeError, KeyError):
                continue
            return True
        return False


def is_signed(document: Any) -> bool:
    """Whether `document` is a JWS: a JSON serialization (general or flattened) or a compact
    string."""
    if isinstance(document, str):
        return _COMPACT_JWS.match(document) is not None
    return (
        isinstance(document, dict)
        and "payload" in document
        and ("signatures" in document or "signature" in document)
    )


def is_encrypted(document: Any) -> bool:
    """Whether `document` is a JWE in JSON serialization (it has a ``ciphertext``)."""
    return isinstance(document, dict) and "ciphertext" in document


def compact_form(body: bytes) -> str | None:
    """The compact JWS in `body` (surrounding white space removed), or ``None``.

    Raises `EncryptedVcon` for a compact JWE (five segments).
    """
    head = body[:16].lstrip()
    if not head or head[:1] in b'{["':
        return None  # JSON, the common case: the body is not copied
    text = body.strip()
    try:
        candidate = text.decode("ascii")
    except UnicodeDecodeError:
        return None
    if _COMPACT_JWE.match(candidate):
        raise EncryptedVcon()
    return candidate if _COMPACT_JWS.match(candidate) else None


def _signatures(document: Any) -> tuple[str, list[Mapping[str, Any]]]:
    """The payload segment and the signature members of a JWS in any serialization."""
    if isinstance(document, str):
        protected, payload, signature = document.split(".")
        return payload, [{"protected": protected, "signature": signature}]
    payload = document.get("payload")
    if not isinstance(payload, str) or not payload:
        raise PayloadError({"payload": ["Must be the base64url-encoded vCon."]})
    if "signatures" in document:
        members = document["signatures"]
        if not isinstance(members, list) or not members:
            raise PayloadError({"signatures": ["Must be a non-empty list of signatures."]})
    else:
        members = [{k: document[k] for k in ("protected", "header", "signature") if k in document}]
    for index, member in enumerate(members):
        if not isinstance(member, dict) or not isinstance(member.get("signature"), str):
            raise PayloadError({f"signatures.{index}": ["Must be an object with a signature."]})
    return payload, members


def open_signed(document: Any, trust: VconTrust | None) -> Any:
    """The vCon inside the JWS `document` (a dict, or a compact string), decoded.

    With `trust` holding keys, `BadSignature` unless a signature verifies with one of them.
    `PayloadError` (with paths) when the JWS is malformed or its payload is not JSON.
    """
    payload, members = _signatures(document)
    if trust is not None and trust.keys and not any(trust.verifies(payload, m) for m in members):
        raise BadSignature(
            {"signatures": ["No signature verifies with a key in server.vcon_keys."]}
        )
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    except (binascii.Error, ValueError) as exc:
        raise PayloadError({"payload": ["Not valid base64url."]}) from exc
    try:
        return decode_json(raw)
    except NotJson as exc:
        raise PayloadError({"payload": [exc.message]}) from exc


def sign_vcon(document: Mapping[str, Any], private_key: Key, algorithm: str = "ES256") -> Any:
    """`document` as a signed vCon (general JSON serialization), as the draft describes it:
    the algorithm in the protected header, the vCon's ``uuid`` in the unprotected one."""
    payload = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    member: Any = {"protected": {"alg": algorithm}, "header": {"uuid": document.get("uuid")}}
    registry = jws.JWSRegistry(algorithms=ALGORITHMS, strict_check_header=False)
    registry.max_payload_length = max(len(payload) * 2, registry.max_payload_length)
    return jws.serialize_json([member], payload, private_key, registry=registry)
