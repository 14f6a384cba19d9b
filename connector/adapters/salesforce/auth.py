"""Logging in to Salesforce: an access token from the configured ``auth`` flow.

OAuth client credentials and JWT bearer go to the token endpoint with ``requests`` (the JWT
assertion signed with PyJWT), the retiring SOAP username/password login goes through
simple-salesforce's ``SalesforceLogin``, and a configured session id is used as it is. A refused
login (``invalid_client``, ``invalid_grant``, …) is a `PermanentError`; server errors, rate limits
and network failures are a `RetryableError`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import jwt
import requests
from simple_salesforce.exceptions import SalesforceAuthenticationFailed
from simple_salesforce.login import SalesforceLogin

from connector.adapters import PermanentError, RetryableError, scrub

#: OAuth grant type of the JWT bearer flow.
JWT_BEARER_GRANT: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: Lifetime of a JWT bearer assertion (Salesforce accepts expiries at most 3 minutes ahead).
JWT_LIFETIME_SECONDS: Final = 180
#: SOAP ``login()`` is not available from API version 65.0 on.
_SOAP_LOGIN_MAX_VERSION: Final = 64.0

_OAUTH_RETRYABLE: Final = frozenset({"rate_limit_exceeded", "unknown_error", "server_error"})
_SOAP_RETRYABLE: Final = frozenset(
    {"SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION", "REQUEST_LIMIT_EXCEEDED"}
)

#: The package's logger: every module of the adapter logs under it.
log = logging.getLogger(__package__)


def _login(
    session: requests.Session,
    auth: Mapping[str, Any],
    *,
    instance_url: str,
    version: str,
    target: str,
) -> str:
    """A new access token (or the configured session id) for the target named `target`."""
    method = auth["method"]
    if method == "session":
        return str(auth["session_id"])
    if method == "password":
        return _soap_login(session, auth, version)
    if method == "client_credentials":
        url = _client_credentials_url(auth, instance_url)
        data = {
            "grant_type": "client_credentials",
            "client_id": auth["client_id"],
            "client_secret": auth["client_secret"],
        }
    else:
        url = auth["token_url"] or f"{auth['audience'].rstrip('/')}/services/oauth2/token"
        data = {"grant_type": JWT_BEARER_GRANT, "assertion": _jwt_assertion(auth)}
    try:
        response = session.post(url, data=data, headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        raise RetryableError(f"Salesforce login failed: {type(exc).__name__}") from exc
    token = _token_from(response)
    log.info("Salesforce target %r: logged in (%s)", target, method)
    return token


def _client_credentials_url(auth: Mapping[str, Any], instance_url: str) -> str:
    if auth["token_url"]:
        return str(auth["token_url"])
    if auth["domain"]:
        return f"https://{auth['domain']}.salesforce.com/services/oauth2/token"
    return f"{instance_url}/services/oauth2/token"


def _jwt_assertion(auth: Mapping[str, Any]) -> str:
    try:
        key = Path(auth["private_key_file"]).read_bytes()
    except OSError as exc:
        raise PermanentError(f"Cannot read the JWT private key file: {type(exc).__name__}") from exc
    claims = {
        "iss": auth["consumer_key"],
        "sub": auth["username"],
        "aud": auth["audience"],
        "exp": int(time.time()) + JWT_LIFETIME_SECONDS,
    }
    try:
        return jwt.encode(claims, key, algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        raise PermanentError(
            f"Cannot sign the JWT assertion with the private key file: {type(exc).__name__}"
        ) from exc


def _token_from(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code == 200 and isinstance(body, Mapping):
        token = body.get("access_token")
        if isinstance(token, str) and token:
            return token
    error = str(body.get("error") or "") if isinstance(body, Mapping) else ""
    description = str(body.get("error_description") or "") if isinstance(body, Mapping) else ""
    text = f"Salesforce login refused: HTTP {response.status_code}"
    if error:
        text += f" {error}"
    if description:
        text += f" ({scrub(description, (), 200)})"
    if response.status_code >= 500 or error in _OAUTH_RETRYABLE or response.status_code == 200:
        raise RetryableError(text)
    raise PermanentError(text)


def _soap_login(session: requests.Session, auth: Mapping[str, Any], version: str) -> str:
    if float(version) > _SOAP_LOGIN_MAX_VERSION:
        version = f"{_SOAP_LOGIN_MAX_VERSION:.1f}"
    try:
        session_id, _instance = SalesforceLogin(
            username=auth["username"],
            password=auth["password"],
            security_token=auth["security_token"],
            domain=auth["domain"],
            session=session,
            sf_version=version,
        )
    except SalesforceAuthenticationFailed as exc:
        code = exc.code
        text = f"Salesforce SOAP login refused: {code}"
        if (isinstance(code, int) and code >= 500) or code in _SOAP_RETRYABLE:
            raise RetryableError(text) from exc
        raise PermanentError(text) from exc
    except requests.RequestException as exc:
        raise RetryableError(f"Salesforce SOAP login failed: {type(exc).__name__}") from exc
    return session_id
