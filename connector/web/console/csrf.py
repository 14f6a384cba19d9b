"""CSRF protection for the console's forms: a per-session token every POST must echo.

The token lives in the signed session cookie and is sent back as the ``csrf_token`` form field;
it is compared in constant time. The session cookie is ``SameSite=Lax`` as well, so this is the
second of two locks. (Flask-WTF's CSRFProtect does the same app-wide; scoped to the console
blueprint, the webhook path cannot be affected at all.)
"""

from __future__ import annotations

import hmac
import secrets

from flask import request, session
from werkzeug.exceptions import BadRequest

__all__ = ["FIELD", "CsrfRejected", "csrf_token", "verify_csrf"]

FIELD = "csrf_token"
_KEY = "csrf"


class CsrfRejected(BadRequest):
    """A form came without this session's CSRF token (answered 400)."""

    description = "The form has expired or did not come from this console. Reload and retry."


def csrf_token() -> str:
    """This session's token (created on first use), for a hidden field in every form."""
    token = session.get(_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[_KEY] = token
    return token


def verify_csrf() -> None:
    """Raise `CsrfRejected` unless the request's form carries this session's token."""
    expected = session.get(_KEY)
    offered = request.form.get(FIELD, "")
    if not isinstance(expected, str) or not hmac.compare_digest(
        expected.encode(), offered.encode()
    ):
        raise CsrfRejected()
