"""The console blueprint: login required everywhere, CSRF on every POST, labels and roles.

Every request to ``/console/…`` except the login page and the stylesheet needs a logged-in user
who is still configured; POSTs need the session's CSRF token; operator-only views say so with
`operator_required`. Errors are answered as HTML pages in the console's layout.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import Forbidden, HTTPException

from connector.config.sections import ConsoleConfig, ConsoleUser
from connector.ledger.console import ConsoleLedger
from connector.logs import mask_number
from connector.web.console.csrf import FIELD, csrf_token, verify_csrf
from connector.web.console.i18n import LANGUAGES, current_language, label
from connector.web.state import WebState

__all__ = [
    "OPERATOR",
    "ConsoleContext",
    "bp",
    "console_context",
    "current_user",
    "language",
    "operator_required",
]

OPERATOR = "operator"
_PUBLIC = frozenset({"console.login", "console.static"})
_PAGES = (
    ("console.overview", "overview"),
    ("console.calls", "calls"),
    ("console.review", "review"),
    ("console.configuration", "configuration"),
)

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
)

F = TypeVar("F", bound=Callable[..., ResponseReturnValue])


@dataclass(frozen=True)
class ConsoleContext:
    """What console views work with: the configuration, the ledger's console queries."""

    state: WebState
    store: ConsoleLedger

    @property
    def console(self) -> ConsoleConfig:
        """The console's own configuration section."""
        return self.state.config.console


def console_context() -> ConsoleContext:
    """The console context of the current app."""
    state = WebState.current()
    return ConsoleContext(state, ConsoleLedger(state.ledger.engine, state.ledger.clock))


def current_user() -> ConsoleUser | None:
    """The logged-in user, if the session names one that is still configured."""
    name = session.get("user")
    if not isinstance(name, str):
        return None
    return WebState.current().config.console.user(name)


def language() -> str:
    """The language of this request's pages."""
    return current_language(WebState.current().config.defaults.language)


def operator_required(view: F) -> F:
    """Answer 403 unless the logged-in user is an operator."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        user = current_user()
        if user is None or user.role != OPERATOR:
            raise Forbidden(label("forbidden", language()))
        return view(*args, **kwargs)

    return cast(F, wrapped)


@bp.before_request
def _guard() -> ResponseReturnValue | None:
    if request.method == "POST":
        verify_csrf()
    chosen = request.args.get("lang")
    if chosen in LANGUAGES:
        session["lang"] = chosen
    if request.endpoint in _PUBLIC:
        return None
    if current_user() is None:
        session.pop("user", None)
        return redirect(url_for("console.login", next=request.full_path))
    return None


@bp.after_request
def _no_store(response: Any) -> Any:
    # Pages hold personal data: never cached by a proxy or the browser's back button.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"
    )
    return response


@bp.app_template_global("t")
def _t(key: str) -> str:
    return label(key, language())


@bp.context_processor
def _globals() -> dict[str, Any]:
    return {
        "csrf_field": FIELD,
        "csrf_token": csrf_token,
        "user": current_user(),
        "language": language(),
        "languages": LANGUAGES,
        "mask": mask_number,
        "pages": [(e, key) for e, key in _PAGES if e in current_app.view_functions],
    }


@bp.errorhandler(HTTPException)
def _error(exc: HTTPException) -> ResponseReturnValue:
    return render_template("console/error.html", error=exc), exc.code or 500
