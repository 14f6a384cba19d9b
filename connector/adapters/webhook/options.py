"""The options of a ``webhook`` target, declared once as a frozen dataclass."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from marshmallow import ValidationError, validate

from connector.adapters import option

__all__ = ["MIN_SECRET_BYTES", "SECRET_PREFIX", "WebhookOptions", "secret_key"]

#: How Standard Webhooks writes a symmetric signing secret: ``whsec_`` + base64 of the key.
SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret
#: Standard Webhooks asks for keys of 24 to 64 random bytes.
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


def secret_key(secret: str) -> bytes:
    """The key bytes of a ``whsec_<base64>`` secret; `ValueError` (naming no part of the
    secret) when it is not one or its key is shorter than 24 or longer than 64 bytes."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"The secret must start with {SECRET_PREFIX!r} (Standard Webhooks).")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"The secret after {SECRET_PREFIX!r} must be base64.") from exc
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"The secret's key must be {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes "
            f"(it is {len(key)}); make one with "
            "`python -c \"import base64, os; print('whsec_' + "
            'base64.b64encode(os.urandom(32)).decode())"`.'
        )
    return key


def _valid_secret(value: str) -> None:
    try:
        secret_key(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc


@dataclass(frozen=True)
class WebhookOptions:
    """Options of a ``webhook`` target: where to POST each call and how to sign it."""

    url: str = option(
        validate=validate.URL(schemes={"http", "https"}, require_tld=False),
        help="The receiver's URL; every call is POSTed to it.",
    )
    secret: str = option(
        validate=_valid_secret,
        help="Standard Webhooks signing secret, whsec_<base64> (write it as ${ENV_VAR}).",
    )
    include_transcript: bool = option(
        False, help="Send the transcript (text and chunks) with each call."
    )
    connect_timeout: float = option(
        5.0, validate=validate.Range(min=0.1, max=120), help="Seconds to connect to the receiver."
    )
    read_timeout: float = option(
        30.0,
        validate=validate.Range(min=0.1, max=600),
        help="Seconds to wait for the receiver's answer; answer first, work after.",
    )
