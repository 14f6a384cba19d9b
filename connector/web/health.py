"""Health endpoints for load balancers and orchestrators."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from connector.web.state import WebState

__all__ = ["bp"]

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """The process is alive (it checks nothing else)."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Can this instance accept webhooks? 503 when the ledger does not answer.

    The queue's state is reported too, but does not make the web side unready: webhooks are only
    written to the ledger, and the workers catch up once the queue is back.
    """
    state = WebState.current()
    checks: dict[str, str] = {}
    for name, probe in {"storage": state.ledger.ping, **state.probes}.items():
        try:
            probe()
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"unavailable: {type(exc).__name__}"
    ready = checks["storage"] == "ok"
    return jsonify({"status": "ok" if ready else "unavailable", **checks}), 200 if ready else 503
