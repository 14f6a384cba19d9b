"""The Flask application factory."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from connector.config.sections import Config
from connector.ledger.ledger import Ledger
from connector.web import console, health, metrics, webhooks
from connector.web.forwarded import TrustedProxies
from connector.web.state import WebState

__all__ = ["create_app"]


def _json_error(exc: HTTPException) -> ResponseReturnValue:
    name = (exc.name or "error").lower().replace(" ", "_")
    response = jsonify({"error": name, "message": exc.description})
    response.status_code = exc.code or 500
    return response


def create_app(
    config: Config,
    ledger: Ledger | None = None,
    *,
    probes: Mapping[str, Callable[[], object]] | None = None,
) -> Flask:
    """Build the web application for `config`.

    The ledger is opened from the config unless given (e.g. by tests); it is never migrated
    here: `sipgate-crm web` migrates before gunicorn starts, and a worker that boots while the
    database is down must still boot (it answers 503 until the database is back). `probes` are
    reported by ``/readyz`` without deciding readiness (e.g. the queue's ping).
    With ``server.trusted_proxies: N`` the client address is taken from X-Forwarded-For,
    trusting exactly the last N entries, and only on connections from
    ``server.proxy_addresses``; the console's links honour those proxies' X-Forwarded-Prefix
    (serving it under e.g. ``/crm/console/``).
    """
    app = Flask("connector")
    app.config["MAX_CONTENT_LENGTH"] = None  # the intake enforces the limit itself
    app.json.sort_keys = False  # type: ignore[attr-defined]
    WebState(
        config=config,
        ledger=ledger or Ledger.from_url(config.storage.url),
        probes=dict(probes or {}),
    ).init_app(app)
    webhooks.init_app(app, config.server)
    app.register_blueprint(health.bp)
    metrics.init_app(app)
    console.init_app(app, config.console)
    app.register_error_handler(HTTPException, _json_error)
    if config.server.trusted_proxies:
        app.wsgi_app = TrustedProxies(  # type: ignore[method-assign]
            app.wsgi_app, config.server.proxy_addresses, config.server.trusted_proxies
        )
    return app
