"""The webhook endpoint: verify the sender, read a bounded body, validate, store, answer.

The answer is 2xx only after the raw body and one pending delivery per target are committed to the
ledger, in one transaction; the worker's relay picks the deliveries up from there (the ledger is a
transactional outbox, so nothing on the request path depends on the queue). A repeated call id is
answered ``{"status": "duplicate"}`` and changes nothing. Client mistakes get a JSON error naming
what is wrong and never store anything.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from typing import Any

from flask import Blueprint, Flask, jsonify, request
from flask.typing import ResponseReturnValue
from gunicorn.http.errors import NoMoreData, ParseException
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import (
    BadRequest,
    Forbidden,
    LengthRequired,
    RequestEntityTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
)

from connector.config.sections import ServerConfig
from connector.logs import mask_number
from connector.payload import NotJson, PayloadError, UnsupportedVersion, parse_body
from connector.web.state import WebState

__all__ = ["SenderRejected", "init_app", "read_body", "verify_sender"]

log = logging.getLogger(__name__)
_CHUNK = 64 * 1024


class SenderRejected(Forbidden):
    """The request does not come from an allowed sender; answered 403 without detail."""

    description = "Forbidden."


def verify_sender(
    server: ServerConfig,
    remote_addr: str | None,
    path_secret: str | None,
    authorization: str | None,
) -> None:
    """Raise `SenderRejected` unless the sender's address and secret are acceptable.

    `remote_addr` must be inside ``allowed_ips`` (when the list is not empty). When a ``secret``
    is configured, it must arrive as the last path segment or as ``Authorization: Bearer …``;
    both comparisons take constant time.
    """
    if server.allowed_ips:
        try:
            address = ipaddress.ip_address(remote_addr or "")
        except ValueError as exc:
            raise SenderRejected() from exc
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # an IPv4 sender on a dual-stack socket
        if not any(address in network for network in server.allowed_ips):
            raise SenderRejected()
    if server.secret is not None:
        expected = server.secret.encode()
        offered = [path_secret or ""]
        if authorization and authorization[:7].lower() == "bearer ":
            offered.append(authorization[7:].strip())
        # Evaluate every candidate so timing does not reveal which one was tried.
        matches = [hmac.compare_digest(expected, candidate.encode()) for candidate in offered]
        if not any(matches):
            raise SenderRejected()
    elif path_secret is not None:
        raise SenderRejected()


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """Read the whole request body, refusing more than `limit` bytes with 413.

    Works for Content-Length and for ``Transfer-Encoding: chunked`` bodies (which the server
    de-chunks and marks with ``wsgi.input_terminated``). We read ``limit + 1`` bytes ourselves:
    Werkzeug's own limit would silently truncate an oversized chunked body.
    """
    stream = environ["wsgi.input"]
    raw_length = environ.get("CONTENT_LENGTH")
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if raw_length and not chunked:
        try:
            length = int(raw_length)
        except ValueError as exc:
            raise BadRequest("Invalid Content-Length.") from exc
        if length > limit:
            raise RequestEntityTooLarge(f"Body larger than {limit} bytes.")
        to_read = length
    elif chunked or environ.get("wsgi.input_terminated"):
        if not environ.get("wsgi.input_terminated"):
            raise LengthRequired("This server cannot read chunked bodies.")
        to_read = limit + 1
    else:
        return b""
    parts: list[bytes] = []
    size = 0
    while size < to_read:
        try:
            part = stream.read(min(_CHUNK, to_read - size))
        except (ParseException, NoMoreData) as exc:  # malformed or truncated chunked encoding
            raise BadRequest("The body's chunked encoding is malformed or incomplete.") from exc
        if not part:
            break
        parts.append(part)
        size += len(part)
    if size > limit:
        raise RequestEntityTooLarge(f"Body larger than {limit} bytes.")
    if raw_length and not chunked and size < to_read:
        raise BadRequest("Body shorter than its Content-Length.")
    return b"".join(parts)


def _error(status: int, error: str, message: str, **extra: Any) -> ResponseReturnValue:
    return jsonify({"error": error, "message": message, **extra}), status


def receive(secret: str | None = None) -> ResponseReturnValue:
    """``POST {webhook_path}[/<secret>]``: accept one call report."""
    state = WebState.current()
    server = state.config.server
    verify_sender(server, request.remote_addr, secret, request.headers.get("Authorization"))

    mimetype = request.mimetype
    if mimetype and not (mimetype == "application/json" or mimetype.endswith("+json")):
        raise UnsupportedMediaType("Send the call report as application/json.")
    body = read_body(request.environ, server.max_body_bytes)
    if not body:
        return _error(400, "empty_body", "The request has no body.")
    try:
        report = parse_body(body)
    except NotJson as exc:
        return _error(400, "invalid_json", exc.message)
    except UnsupportedVersion as exc:
        return _error(422, "unsupported_version", "Unknown payload version.", fields=exc.messages)
    except PayloadError as exc:
        return _error(422, "invalid_payload", "The call report is invalid.", fields=exc.messages)

    targets = [t.name for t in state.config.targets]
    try:
        delivery_ids = state.ledger.store_call(report, body, targets)
    except SQLAlchemyError as exc:
        log.error(
            "ledger unavailable, call %s not accepted: %s", report.call_id, type(exc).__name__
        )
        raise ServiceUnavailable("Storage unavailable; please retry.") from exc
    if delivery_ids is None:
        log.info("duplicate call %s ignored", report.call_id)
        return jsonify({"status": "duplicate", "call_id": report.call_id}), 200
    log.info(
        "accepted call %s (%s %s → %s, %d targets)",
        report.call_id,
        report.direction,
        mask_number(report.from_number),
        mask_number(report.to_number),
        len(delivery_ids),
    )
    return jsonify({"status": "accepted", "call_id": report.call_id}), 200


def init_app(app: Flask, server: ServerConfig) -> None:
    """Register the webhook routes at the configured path."""
    path = server.webhook_path
    bp = Blueprint("webhooks", __name__)
    bp.add_url_rule(path, "receive", receive, methods=["POST"])
    bp.add_url_rule(f"{path}/<secret>", "receive_with_secret", receive, methods=["POST"])
    app.register_blueprint(bp)
