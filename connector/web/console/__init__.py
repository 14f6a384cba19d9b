"""The sales-ops console under ``/console/``: calls, their delivery states, fixes and reviews.

Off unless ``console.enabled``; server-rendered pages, a stylesheet and one small script, nothing
from a CDN. It reads and writes only the ledger: operator actions change deliveries there and the
worker picks them up; what needs a CRM (a target's check, a search) is a request in the ledger
that the worker executes.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from connector.config.sections import ConsoleConfig

__all__ = ["init_app"]


def init_app(app: Flask, console: ConsoleConfig) -> None:
    """Serve the console on `app` when it is enabled; sessions are signed with its key."""
    if not console.enabled:
        return
    from connector.web.console import auth, pages, review, settings  # noqa: F401 - views
    from connector.web.console.blueprint import bp

    app.secret_key = console.secret_key
    app.config.update(
        SESSION_COOKIE_NAME="sipgate_console",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=console.session_hours),
    )
    app.register_blueprint(bp)
