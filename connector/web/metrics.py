"""``GET /metrics`` for Prometheus, and the count of webhooks by outcome.

With ``server.metrics_bind`` gunicorn listens on a second address that answers only
``/metrics``, and the public bind answers ``/metrics`` with 404. Which listener took a request
is read from the connection itself (its local port), never from a header a client could set.
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import NotFound

from connector.web.state import WebState

__all__ = ["init_app", "local_port"]

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


def local_port(environ: dict[str, Any]) -> str:
    """The port of the listener that accepted this request's connection.

    Under gunicorn that is the connection's own socket address; elsewhere (Werkzeug's server,
    test clients) the WSGI ``SERVER_PORT``.
    """
    sock = environ.get("gunicorn.socket")
    if sock is not None:
        address = sock.getsockname()
        return str(address[1]) if isinstance(address, tuple) else ""  # a unix socket: no port
    return str(environ.get("SERVER_PORT", ""))


def _separate_bind() -> None:
    """With ``server.metrics_bind``: ``/metrics`` only there, and nothing else there."""
    metrics_port = WebState.current().config.server.metrics_port
    if metrics_port is None:
        return
    on_metrics_bind = local_port(request.environ) == metrics_port
    if on_metrics_bind != (request.endpoint == "metrics.metrics"):
        raise NotFound()


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
    """Serve ``/metrics`` (on its own bind when configured); count the webhook routes' answers."""
    app.register_blueprint(bp)
    app.before_request(_separate_bind)
    app.after_request(_count_webhook)
