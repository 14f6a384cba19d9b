"""The review queue: calls held because they matched nobody or several records.

For each held delivery: the candidates the search found, a search box for a number or a name (a
search request the worker runs with the target's adapter; by name only where the adapter
declares `supports_name_search`), and "log on this record", which journals the chosen
record as the delivery's match (assigned by the user) and makes the delivery due: the normal
pipeline writes the call on it. "Remember this number" pins the number to the record (a memo
the matching step consults before searching), so the next call from it matches.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from flask import abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import BadRequest, Conflict

from connector.config.sections import TargetConfig
from connector.ledger.console import PIN_PREFIX, ActionRefused
from connector.ledger.ledger import DeliveryState
from connector.ledger.requests import PENDING, RUNNING, SEARCH, ConsoleRequest, Requests
from connector.ledger.tables import REVIEW
from connector.phone import parse_sipgate, parse_stored
from connector.web.console.blueprint import (
    bp,
    console_context,
    current_user,
    language,
    operator_required,
)
from connector.web.console.i18n import label

__all__ = ["search_params"]


def _searches(requests: Requests, deliveries: Sequence[DeliveryState]) -> dict[int, ConsoleRequest]:
    """The newest search request of each held delivery."""
    wanted = {d.delivery_id for d in deliveries}
    found: dict[int, ConsoleRequest] = {}
    for req in requests.recent(SEARCH):
        delivery_id = req.params.get("delivery_id")
        if delivery_id in wanted and delivery_id not in found:
            found[int(delivery_id)] = req
    return found


def _name_search_targets(targets: Sequence[TargetConfig]) -> frozenset[str]:
    """The targets whose adapter declares `Adapter.supports_name_search`."""
    return frozenset(target.name for target in targets if target.searches_by_name)


@bp.get("/review")
def review() -> ResponseReturnValue:
    """Every held delivery with its candidates and the latest search's results."""
    ctx = console_context()
    queue = ctx.store.review_queue()
    held = [d for c in queue for d in c.deliveries if d.status == REVIEW]
    searches = _searches(Requests(ctx.state.ledger.engine), held)
    waiting = any(s.status in (PENDING, RUNNING) for s in searches.values())
    return render_template(
        "console/review.html",
        queue=queue,
        searches=searches,
        waiting=waiting,
        review=REVIEW,
        by_name=_name_search_targets(ctx.state.config.targets),
    )


def search_params(query: str, region: str) -> dict[str, str]:
    """What the worker searches for `query`: a number-looking input (any format, read in
    `region` like matching does) by phone, anything else by name."""
    if parse_stored(query, region) is not None:
        return {"number": query}
    return {"name": query}


def _held(delivery_id: int) -> tuple[DeliveryState, str]:
    """The held delivery and its call id; 404 if there is none, 409 if it is not held."""
    ctx = console_context()
    for call in ctx.store.review_queue():
        for d in call.deliveries:
            if d.delivery_id == delivery_id:
                if d.status != REVIEW:
                    break
                return d, call.call_id
    found = ctx.store.delivery(delivery_id)
    if found is None:
        abort(404)
    raise Conflict(f"Not possible while the delivery is {found.status}.")


@bp.post("/review/<int:delivery_id>/search")
@operator_required
def search(delivery_id: int) -> ResponseReturnValue:
    """Ask the worker to search the target's CRM for a number or a name."""
    delivery, call_id = _held(delivery_id)
    query = request.form.get("query", "").strip()[:100]
    user = current_user()
    assert user is not None
    ctx = console_context()
    params = search_params(query, ctx.state.config.defaults.region)
    if "name" in params and delivery.target not in _name_search_targets(ctx.state.config.targets):
        raise BadRequest(label("search_number_only", language()))
    Requests(ctx.state.ledger.engine).submit(
        SEARCH, delivery.target, {**params, "delivery_id": delivery_id}, user.name
    )
    ctx.store.record_action(user.name, "search", call_id=call_id, target=delivery.target)
    return redirect(url_for("console.review", _anchor=f"delivery-{delivery_id}"))


def _chosen(
    delivery: DeliveryState, searches: Mapping[int, ConsoleRequest], source: str, index: int
) -> Mapping[str, Any]:
    """The candidate the form names, taken from the ledger (never from the form itself)."""
    if source == "search":
        found = searches.get(delivery.delivery_id)
        candidates = (found.result or {}).get("candidates", []) if found else []
    else:
        candidates = (delivery.refs.get("review") or {}).get("candidates", [])
    if not 0 <= index < len(candidates):
        abort(400, "No such candidate.")
    chosen: Mapping[str, Any] = candidates[index]
    return chosen


@bp.post("/review/<int:delivery_id>/assign")
@operator_required
def assign(delivery_id: int) -> ResponseReturnValue:
    """Log the held call on the chosen candidate; optionally remember the number for it."""
    delivery, call_id = _held(delivery_id)
    ctx = console_context()
    searches = _searches(Requests(ctx.state.ledger.engine), [delivery])
    chosen = _chosen(
        delivery,
        searches,
        request.form.get("source", "review"),
        request.form.get("index", -1, type=int),
    )
    user = current_user()
    assert user is not None
    record = {
        key: chosen.get(key) for key in ("type", "id", "name", "owner_id", "parent_id", "extra")
    }
    try:
        ctx.store.assign(user.name, delivery_id, record)
    except ActionRefused as exc:
        raise Conflict(str(exc)) from exc
    if request.form.get("remember"):
        detail = ctx.store.call(call_id)
        caller = parse_sipgate(detail.call.remote_number) if detail else None
        if caller is not None:
            ctx.state.ledger.memo_set(delivery.target, PIN_PREFIX + caller.e164, json.dumps(record))
            ctx.store.record_action(
                user.name,
                "remember_number",
                call_id=call_id,
                target=delivery.target,
                detail={"record": {"type": record["type"], "id": record["id"]}},
            )
    return redirect(url_for("console.call", call_id=call_id))
