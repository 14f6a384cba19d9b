"""``GET /metrics`` for Prometheus, and the count of webhooks by outcome."""

from __future__ import annotations

import hmac

from flask import Blueprint, Flask, Response, g, jsonify, request
from flask.typing import ResponseReturnValue

from connector.web.state import WebState

__all__ = ["init_app"]

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics() -> ResponseReturnValue:
    """Every process's counters and the ledger's gauges; bearer ``server.metrics_token`` if set."""
    from connector.metrics.exposition import render

    state = WebState.current()
    token = state.config.server.metrics_token
    given = request.headers.get("Authorization", "")
    if token and not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        response = jsonify({"error": "unauthorized", "message": "Send the metrics token."})
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response, 401
    text, content_type = render(state.ledger)
    return Response(text, content_type=content_type)


def _count_webhook(response: Response) -> Response:
    if request.blueprint != "webhooks":
        return response
    from connector.metrics.families import WEBHOOKS

    stored = g.get("webhook_outcome")
    if stored and response.status_code == 200:
        WEBHOOKS.labels(outcome=stored, reason="").inc()
        return response
    answer = response.get_json(silent=True) if response.is_json else None
    answer = answer if isinstance(answer, dict) else {}
    reason = str(answer.get("error") or f"http_{response.status_code}")[:40]
    WEBHOOKS.labels(outcome="rejected", reason=reason).inc()
    return response


def init_app(app: Flask) -> None:
    """Serve ``/metrics`` and count every answer of the webhook routes."""
    app.register_blueprint(bp)
    app.after_request(_count_webhook)
