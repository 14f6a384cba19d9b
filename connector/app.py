"""The Flask application factory."""

from __future__ import annotations

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from connector import health, webhooks
from connector.config import Config
from connector.services import Services

__all__ = ["create_app"]


def _json_error(exc: HTTPException) -> ResponseReturnValue:
    name = (exc.name or "error").lower().replace(" ", "_")
    response = jsonify({"error": name, "message": exc.description})
    response.status_code = exc.code or 500
    return response


def create_app(config: Config, services: Services | None = None) -> Flask:
    """Build the web application for `config`.

    `services` (ledger and queue) are opened from the config unless given, e.g. by tests.
    With ``server.trusted_proxies: N`` the client address is taken from X-Forwarded-For,
    trusting exactly the last N entries (the ones our own proxies appended).
    """
    app = Flask("connector")
    app.config["MAX_CONTENT_LENGTH"] = None  # webhooks.read_body enforces the limit itself
    app.json.sort_keys = False  # type: ignore[attr-defined]
    # `sipgate-crm web` migrated before gunicorn started; a worker that boots while the database
    # is down must still boot (it answers 503 until the database is back).
    app.extensions["sipgate_crm"] = services or Services.open(config, migrate=False)
    webhooks.init_app(app, config.server)
    app.register_blueprint(health.bp)
    app.register_error_handler(HTTPException, _json_error)
    if config.server.trusted_proxies:
        n = config.server.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n)  # type: ignore[method-assign]
    return app
