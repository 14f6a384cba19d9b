"""The overview, the calls list and the page of one call, with its operator actions."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup
from werkzeug.exceptions import Conflict

from connector.ledger.console import ActionRefused, CallFilter
from connector.ledger.tables import DEAD, STATUSES
from connector.payload import PayloadError, report_from_json
from connector.phone import parse_stored
from connector.web.console.blueprint import (
    OPERATOR,
    bp,
    console_context,
    current_user,
    language,
    operator_required,
)
from connector.web.console.chart import calls_per_day_svg
from connector.web.console.i18n import label
from connector.web.console.links import record_links

__all__ = ["call_filter", "local_midnight"]

CHART_DAYS = 14
PAGE_SIZE = 50


def local_midnight(day: date, timezone: str) -> datetime:
    """The start of `day` in `timezone`, in UTC."""
    return datetime.combine(day, time(), ZoneInfo(timezone)).astimezone(UTC)


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def call_filter(args: Any, region: str, timezone: str) -> CallFilter:
    """The calls list's filter from the query string.

    ``q`` is a phone number in any format (normalised like matching does: national spellings
    read in `region`) or, when it is not a number, a call id.
    """
    query = (args.get("q") or "").strip()
    numbers: tuple[str, ...] = ()
    call_id = None
    if query:
        number = parse_stored(query, region)
        if number is not None and not query.startswith("pbx-"):
            numbers = (number.digits(), number.e164)
        else:
            call_id = query
    since, until = _date(args.get("since")), _date(args.get("until"))
    status = args.get("status") or None
    return CallFilter(
        numbers=numbers,
        call_id=call_id,
        status=status if status in STATUSES else None,
        target=args.get("target") or None,
        direction=args.get("direction") if args.get("direction") in ("IN", "OUT") else None,
        channel=args.get("channel") or None,
        user=args.get("user") or None,
        since=local_midnight(since, timezone) if since else None,
        until=local_midnight(until + timedelta(days=1), timezone) if until else None,
    )


@bp.get("/")
def overview() -> ResponseReturnValue:
    """Per target: counts by state today and over 7 days; parked targets (why, since and until
    when), dead deliveries (how many, the latest reason, a link to them), oldest wait, chart."""
    ctx = console_context()
    config = ctx.state.config
    zone = config.defaults.timezone
    today = datetime.now(ZoneInfo(zone)).date()
    days = [today - timedelta(days=n) for n in range(CHART_DAYS - 1, -2, -1)]
    figures = ctx.store.overview(
        local_midnight(today, zone), [local_midnight(d, zone) for d in days]
    )
    parked = ctx.state.ledger.parked_details()
    chart = calls_per_day_svg(figures.per_day, label("calls_per_day", language()), zone)
    return render_template(
        "console/overview.html",
        figures=figures,
        targets=[t.name for t in config.targets],
        statuses=STATUSES,
        parked=parked,
        chart=Markup(chart),  # noqa: S704 - built from numbers and escaped labels only
        now=datetime.now(UTC),
    )


@bp.get("/calls")
def calls() -> ResponseReturnValue:
    """The calls list: newest first, filters, search by number or call id, keyset pages."""
    ctx = console_context()
    config = ctx.state.config
    where = call_filter(request.args, config.defaults.region, config.defaults.timezone)
    before = request.args.get("before", type=int)
    page, following = ctx.store.list_calls(where, before=before, limit=PAGE_SIZE)
    args = {k: v for k, v in request.args.items() if k != "before" and v}
    return render_template(
        "console/calls.html",
        calls=page,
        following=following,
        args=args,
        statuses=STATUSES,
        targets=[t.name for t in config.targets],
    )


@bp.get("/calls/<path:call_id>")
def call(call_id: str) -> ResponseReturnValue:
    """One call: metadata, AI content (transcript for operators), deliveries, attempts, actions."""
    ctx = console_context()
    detail = ctx.store.call(call_id)
    if detail is None:
        abort(404, label("not_found", language()))
    try:
        report = report_from_json(detail.raw_body)
    except (PayloadError, ValueError):
        report = None
    user = current_user()
    operator = user is not None and user.role == OPERATOR
    revealed = operator and request.args.get("reveal") == "1"
    links = {
        d.delivery_id: record_links(ctx.state.config, d.target, d.refs)
        for d in detail.call.deliveries
    }
    return render_template(
        "console/call.html",
        detail=detail,
        report=report,
        operator=operator,
        revealed=revealed,
        links=links,
        dead=DEAD,
    )


@bp.post("/calls/<path:call_id>/reveal")
@operator_required
def reveal(call_id: str) -> ResponseReturnValue:
    """An operator asks to see the call's numbers; recorded like every operator action."""
    ctx = console_context()
    if ctx.store.call(call_id) is None:
        abort(404)
    user = current_user()
    assert user is not None
    ctx.store.record_action(user.name, "reveal_numbers", call_id=call_id)
    return redirect(url_for("console.call", call_id=call_id, reveal=1))


_ACTIONS = {"retry_now", "replay", "skip"}


@bp.post("/deliveries/<int:delivery_id>/<action>")
@operator_required
def act(delivery_id: int, action: str) -> ResponseReturnValue:
    """Retry now, replay or skip one delivery; the worker picks the change up from the ledger."""
    if action not in _ACTIONS:
        abort(404)
    user = current_user()
    assert user is not None
    store = console_context().store
    try:
        call_id = getattr(store, action)(user.name, delivery_id)
    except ActionRefused as exc:
        raise Conflict(str(exc)) from exc
    flash(label("done_action", language()))
    return redirect(url_for("console.call", call_id=call_id))
