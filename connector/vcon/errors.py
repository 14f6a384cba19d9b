"""What the webhook answers for a vCon it cannot take: each a `PayloadError` with field paths."""

from __future__ import annotations

from connector.report import PayloadError

__all__ = ["BadSignature", "EncryptedVcon", "SignatureRequired"]


class EncryptedVcon(PayloadError):
    """An encrypted (JWE) vCon: this release cannot decrypt it (answered 415)."""

    def __init__(self) -> None:
        super().__init__(
            {"_body": ["Encrypted (JWE) vCons are not supported; send it signed or unsigned."]}
        )


class SignatureRequired(PayloadError):
    """An unsigned vCon while ``server.vcon_require_signature`` is on (answered 422)."""

    def __init__(self) -> None:
        super().__init__(
            {"_body": ["A signed vCon is required (server.vcon_require_signature is on)."]}
        )


class BadSignature(PayloadError):
    """A signed vCon whose JWS no configured ``server.vcon_keys`` key verifies (answered 422)."""
