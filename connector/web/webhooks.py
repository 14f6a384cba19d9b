"""The webhook endpoint: verify the sender, read a bounded body (`intake`), validate, store, answer.

The answer is 2xx only after the raw body and one pending delivery per target are committed to the
ledger, in one transaction; the worker's relay picks the deliveries up from there (the ledger is a
transactional outbox, so nothing on the request path depends on the queue). A repeated call id is
answered ``{"status": "duplicate"}`` and changes nothing. Client mistakes get a JSON error naming
what is wrong and never store anything.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import ServiceUnavailable, UnsupportedMediaType

from connector.config.sections import ServerConfig
from connector.logformat import log_context
from connector.logs import mask_number
from connector.payload import NotJson, PayloadError, UnsupportedVersion, parse_body
from connector.report import CallReport
from connector.vcon.errors import BadSignature, EncryptedVcon, SignatureRequired
from connector.vcon.sign import VconTrust
from connector.web.intake import read_body, verify_sender
from connector.web.state import WebState

__all__ = ["CALL_ID_KEY", "init_app"]

log = logging.getLogger(__name__)

_TRUST = "sipgate_crm.vcon_trust"
#: JSON bodies, and compact (signed) vCons.
_JOSE = "application/jose"
#: Where a request's environ keeps the call id once the body is parsed (for the access log).
CALL_ID_KEY = "sipgate_crm.call_id"


def _error(status: int, error: str, message: str, **extra: Any) -> ResponseReturnValue:
    return jsonify({"error": error, "message": message, **extra}), status


def _stored(status: str, call_id: str) -> ResponseReturnValue:
    """The 200 answer: ``accepted`` (stored now) or ``duplicate`` (stored before); noted in
    `flask.g` for the webhook counter, which need not parse the answer again."""
    g.webhook_outcome = status
    return jsonify({"status": status, "call_id": call_id}), 200


def receive(secret: str | None = None) -> ResponseReturnValue:
    """``POST {webhook_path}[/<secret>]``: accept one call report."""
    state = WebState.current()
    server = state.config.server
    verify_sender(server, request.remote_addr, secret, request.headers.get("Authorization"))

    mimetype = request.mimetype
    if mimetype and not (mimetype in ("application/json", _JOSE) or mimetype.endswith("+json")):
        raise UnsupportedMediaType("Send the call report as application/json.")
    body = read_body(request.environ, server.max_body_bytes, server.body_timeout_seconds)
    if not body:
        return _error(400, "empty_body", "The request has no body.")
    try:
        report = parse_body(body, current_app.extensions[_TRUST])
    except NotJson as exc:
        return _error(400, "invalid_json", exc.message)
    except EncryptedVcon as exc:
        return _error(
            415, "encrypted_vcon", "Encrypted vCons are not supported.", fields=exc.messages
        )
    except SignatureRequired as exc:
        return _error(422, "signature_required", "A signed vCon is required.", fields=exc.messages)
    except BadSignature as exc:
        return _error(
            422, "invalid_signature", "The vCon's signature does not verify.", fields=exc.messages
        )
    except UnsupportedVersion as exc:
        return _error(422, "unsupported_version", "Unknown payload version.", fields=exc.messages)
    except PayloadError as exc:
        return _error(422, "invalid_payload", "The call report is invalid.", fields=exc.messages)

    request.environ[CALL_ID_KEY] = report.call_id
    with log_context(call_id=report.call_id):
        return _store(state, report, body)


def _store(state: WebState, report: CallReport, body: bytes) -> ResponseReturnValue:
    """Commit the call and one pending delivery per target; answer accepted or duplicate."""
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
        return _stored("duplicate", report.call_id)
    if log.isEnabledFor(logging.INFO):  # masking costs more than the rest of the line
        log.info(
            "accepted call %s (%s %s → %s, %d targets)",
            report.call_id,
            report.direction,
            mask_number(report.from_number),
            mask_number(report.to_number),
            len(delivery_ids),
        )
    return _stored("accepted", report.call_id)


def init_app(app: Flask, server: ServerConfig) -> None:
    """Register the webhook routes at the configured path, with the vCon keys they trust."""
    app.extensions[_TRUST] = (
        VconTrust.from_specs(
            server.vcon_keys,
            required=server.vcon_require_signature,
            max_payload_bytes=server.max_body_bytes,
        )
        if server.vcon_keys
        else None
    )
    path = server.webhook_path
    bp = Blueprint("webhooks", __name__)
    bp.add_url_rule(path, "receive", receive, methods=["POST"])
    bp.add_url_rule(f"{path}/<secret>", "receive_with_secret", receive, methods=["POST"])
    app.register_blueprint(bp)
