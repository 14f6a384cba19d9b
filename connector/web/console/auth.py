"""Console logins: password hashes from the config, a login rate limit, logout.

Passwords are checked with Werkzeug (scrypt or pbkdf2 hashes from ``sipgate-crm console
hash-password``). Failed logins are recorded in the ledger, so the limit (``login_attempts`` per
user name, four times that per client address, within ``login_window_minutes``) holds across all
gunicorn workers. A successful login starts a fresh session.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from flask import redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from werkzeug.security import check_password_hash, generate_password_hash

from connector.web.console.blueprint import bp, console_context, current_user

__all__ = ["hash_password"]

# Checked when the user name is unknown, so the answer takes as long as for a wrong password.
_DUMMY_HASH = generate_password_hash("not a real password")


def hash_password(password: str) -> str:
    """A Werkzeug scrypt hash of `password` for ``console.users[].password_hash``."""
    return generate_password_hash(password, method="scrypt")


def _safe_next(target: str | None) -> str:
    """Only a path inside the console; anything else (other hosts, schemes) goes to the overview."""
    if target and target.startswith("/console/") and not urlsplit(target).netloc:
        return target
    return url_for("console.overview")


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """The login form; a POST checks the password under the rate limit."""
    if request.method == "GET":
        if current_user() is not None:
            return redirect(url_for("console.overview"))
        return render_template("console/login.html", error=None)
    ctx = console_context()
    config = ctx.console
    name = request.form.get("user", "").strip()[:64]
    address = request.remote_addr or ""
    since = datetime.now(UTC) - timedelta(minutes=config.login_window_minutes)
    by_user, by_address = ctx.store.failed_logins(name, address, since)
    if by_user >= config.login_attempts or by_address >= 4 * config.login_attempts:
        return render_template("console/login.html", error="login_limited"), 429
    user = config.user(name)
    password = request.form.get("password", "")
    valid = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
    if user is None or not valid:
        ctx.store.record_action(name or "-", "login_failed", detail={"address": address})
        return render_template("console/login.html", error="login_failed"), 401
    language = session.get("lang")
    session.clear()
    session.permanent = True
    session["user"] = user.name
    if language:
        session["lang"] = language
    ctx.store.record_action(user.name, "login", detail={"address": address})
    return redirect(_safe_next(request.args.get("next")))


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End the session."""
    user = current_user()
    if user is not None:
        console_context().store.record_action(user.name, "logout")
    session.clear()
    return redirect(url_for("console.login"))
