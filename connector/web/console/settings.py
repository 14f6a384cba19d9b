"""The configuration page: targets, filters, matching and mappings without secrets; checks.

"Run the check again" leaves a check request in the ledger; the worker runs the target's
``check`` and stores the result, which this page shows (refreshing while it waits).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from flask import abort, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from connector.config.sections import TargetConfig
from connector.ledger.requests import CHECK, PENDING, RUNNING, Requests
from connector.web.console.blueprint import bp, console_context, current_user, operator_required

__all__ = ["public_options"]

_SECRET_WORDS = ("secret", "token", "password", "key", "credential", "private")
HIDDEN = "••••••"


def _public(key: str, value: Any) -> Any:
    if any(word in key.lower() for word in _SECRET_WORDS):
        return HIDDEN
    if isinstance(value, Mapping):
        return {k: _public(str(k), v) for k, v in value.items()}
    if isinstance(value, str) and "://" in value:
        try:
            return make_url(value).render_as_string(hide_password=True)
        except ArgumentError:
            return value
    return value


def public_options(target: TargetConfig) -> dict[str, Any]:
    """A target's adapter options with every secret hidden (keys naming one, URL passwords)."""
    options = target.options
    if dataclasses.is_dataclass(options) and not isinstance(options, type):
        options = dataclasses.asdict(options)
    return {key: _public(key, value) for key, value in dict(options).items()}


def _policy(target: TargetConfig) -> dict[str, Any]:
    policy = target.policy
    return {
        "mapping": policy.mapping_file or "-",
        "language": policy.language,
        "transcript": policy.transcript,
        "filters": asdict(policy.filters),
        "matching": asdict(policy.matching),
        "owners": {"users": len(policy.owners.users), "fallback": bool(policy.owners.fallback)},
        "tasks": {"enabled": policy.tasks.enabled, "owner": policy.tasks.owner},
        "fields": sorted(policy.fields),
    }


@bp.get("/configuration")
def configuration() -> ResponseReturnValue:
    """Every target with its public options, policy and last check result."""
    ctx = console_context()
    requests = Requests(ctx.state.ledger.engine)
    checks = {t.name: requests.latest(CHECK, t.name) for t in ctx.state.config.targets}
    targets = [
        {
            "name": t.name,
            "type": t.type,
            "options": public_options(t),
            "policy": _policy(t),
            "check": checks[t.name],
        }
        for t in ctx.state.config.targets
    ]
    waiting = any(c is not None and c.status in (PENDING, RUNNING) for c in checks.values())
    return render_template("console/configuration.html", targets=targets, waiting=waiting)


@bp.post("/configuration/<target>/check")
@operator_required
def run_check(target: str) -> ResponseReturnValue:
    """Ask the worker to run `target`'s check."""
    ctx = console_context()
    if target not in {t.name for t in ctx.state.config.targets}:
        abort(404)
    user = current_user()
    assert user is not None
    Requests(ctx.state.ledger.engine).submit(CHECK, target, {}, user.name)
    ctx.store.record_action(user.name, "run_check", target=target)
    return redirect(url_for("console.configuration"))
