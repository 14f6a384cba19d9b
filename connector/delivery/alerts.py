"""Alerts: dead deliveries, parked targets and a long review queue, told once to each channel.

What was reported is remembered in the ledger's ``target_memos`` table under `ALERTS_MEMO` (a
name no target can have): a dead delivery by its id and last replay, a parking by target and end,
the review queue until it is short again, and when the last message went out. Restarts and
several workers therefore never report the same thing twice. Messages carry call ids, targets
and scrubbed reasons only: never transcript or summary text, never phone numbers.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import requests
from sqlalchemy import delete, func, select

from connector.adapters.kit.scrub import scrub
from connector.config.sections import AlertChannel, AlertsConfig
from connector.ledger.ledger import Ledger
from connector.ledger.tables import DEAD, calls, deliveries, target_memos

__all__ = [
    "ALERTS_MEMO",
    "Alert",
    "AlertWorker",
    "Alerter",
    "deliver",
    "due_alerts",
    "forget_resolved",
    "message_body",
]

log = logging.getLogger(__name__)

#: The memo owner of the alerter's state; target names start with a letter or digit.
ALERTS_MEMO = "~alerts"
#: The memo key of when the last message went out (ISO 8601, UTC).
LAST_SENT = "last-sent"
#: The memo key held while the review queue is reported as too long.
REVIEW_KEY = "review-queue"
#: Events listed in one message; the rest are counted.
MAX_LINES = 20
REVIEW = ("unmatched", "ambiguous")


@dataclass(frozen=True)
class Alert:
    """One thing to report: its `kind` (``dead``, ``parked``, ``review-queue``), where and why."""

    key: str
    kind: str
    target: str
    reason: str
    call_id: str | None = None

    def line(self) -> str:
        """The alert as one line of text."""
        call = f" call {self.call_id}" if self.call_id else ""
        return f"[{self.kind}] {self.target}{call}: {self.reason}"


def _dead_key(delivery_id: int, retry_since: datetime | None) -> str:
    """The memo key of a dead delivery; a replay (a new `retry_since`) makes a new one."""
    return f"dead:{delivery_id}:{retry_since}"


def _parked_key(target: str, until: datetime) -> str:
    return f"parked:{target}:{until.isoformat()}"


def forget_resolved(ledger: Ledger) -> int:
    """Delete the memos of reported alerts that can never come up again; how many.

    A dead delivery's memo goes once that delivery is no longer dead with the same
    `retry_since` (replayed, or removed by retention or a purge); a parking's once its end has
    passed. The review queue's memo and the time of the last message stay. The retention pass
    calls this, so `target_memos` does not grow with every alert ever sent.
    """
    now = ledger.clock()
    with ledger.connection() as conn:
        reported = set(
            conn.execute(
                select(target_memos.c.key).where(target_memos.c.target == ALERTS_MEMO)
            ).scalars()
        )
        dead = {
            _dead_key(row.id, row.retry_since)
            for row in conn.execute(
                select(deliveries.c.id, deliveries.c.retry_since).where(deliveries.c.status == DEAD)
            )
        }
        stale = [
            key
            for key in sorted(reported)
            if (key.startswith("dead:") and key not in dead)
            or (key.startswith("parked:") and datetime.fromisoformat(key.split(":", 2)[2]) <= now)
        ]
    if not stale:
        return 0
    with ledger.engine.begin() as conn:
        conn.execute(
            delete(target_memos).where(
                target_memos.c.target == ALERTS_MEMO, target_memos.c.key.in_(stale)
            )
        )
    return len(stale)


def due_alerts(ledger: Ledger, review_queue_above: int | None) -> list[Alert]:
    """What the ledger holds that has not been reported yet (re-arms the review queue alert once
    the queue is no longer too long)."""
    match_status = deliveries.c.refs["match"]["status"].as_string()
    with ledger.connection() as conn:
        reported = set(
            conn.execute(
                select(target_memos.c.key).where(target_memos.c.target == ALERTS_MEMO)
            ).scalars()
        )
        dead = conn.execute(
            select(
                deliveries.c.id,
                deliveries.c.retry_since,
                deliveries.c.target,
                deliveries.c.last_error,
                calls.c.call_id,
            )
            .join(calls, calls.c.id == deliveries.c.call_pk)
            .where(deliveries.c.status == DEAD)
            .order_by(deliveries.c.id)
        ).all()
        review: dict[str, int] = dict(
            conn.execute(
                select(deliveries.c.target, func.count())
                .where(match_status.in_(REVIEW))
                .group_by(deliveries.c.target)
            ).all()
        )
    alerts = [
        Alert(
            _dead_key(row.id, row.retry_since),
            "dead",
            row.target,
            scrub(row.last_error or "no reason recorded"),
            row.call_id,
        )
        for row in dead
    ]
    alerts += [
        Alert(
            _parked_key(target, until),
            "parked",
            target,
            f"parked until {until.isoformat()}: {scrub(reason)}",
        )
        for target, (until, reason) in sorted(ledger.parked_targets().items())
    ]
    waiting = sum(review.values())
    if review_queue_above is not None and waiting > review_queue_above:
        by_target = ", ".join(f"{t} {int(n)}" for t, n in sorted(review.items()))
        alerts.append(
            Alert(
                REVIEW_KEY,
                "review-queue",
                "all targets",
                f"{waiting} deliveries await review, more than {review_queue_above} ({by_target})",
            )
        )
    elif REVIEW_KEY in reported:
        ledger.memo_delete(ALERTS_MEMO, REVIEW_KEY)
        reported.discard(REVIEW_KEY)
    return [alert for alert in alerts if alert.key not in reported]


def _subject(alerts: Sequence[Alert]) -> str:
    kinds = sorted({a.kind for a in alerts})
    return f"sipgate-crm-connector: {len(alerts)} alert(s) ({', '.join(kinds)})"


def _text(alerts: Sequence[Alert]) -> str:
    lines = [a.line() for a in alerts[:MAX_LINES]]
    if len(alerts) > MAX_LINES:
        lines.append(f"… and {len(alerts) - MAX_LINES} more (sipgate-crm status --failed)")
    return "\n".join(lines)


def message_body(channel_type: str, alerts: Sequence[Alert]) -> dict[str, Any]:
    """The JSON body `alerts` take to a ``slack``, ``teams`` or ``http`` channel."""
    subject, text = _subject(alerts), _text(alerts)
    if channel_type == "slack":
        return {"text": f"*{subject}*\n{text}"}
    if channel_type == "teams":
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.2",
            "body": [
                {"type": "TextBlock", "text": subject, "weight": "Bolder", "wrap": True},
                *({"type": "TextBlock", "text": line, "wrap": True} for line in text.split("\n")),
            ],
        }
        return {
            "type": "message",
            "attachments": [
                {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
            ],
        }
    return {
        "subject": subject,
        "alerts": [
            {"kind": a.kind, "target": a.target, "call_id": a.call_id, "reason": a.reason}
            for a in alerts
        ],
    }


def deliver(channel: AlertChannel, alerts: Sequence[Alert]) -> None:
    """Send one message about `alerts` to `channel`; raises when it was not accepted."""
    if channel.type != "email":
        assert channel.url is not None
        response = requests.post(
            channel.url,
            json=message_body(channel.type, alerts),
            headers=channel.headers,
            timeout=channel.timeout_seconds,
        )
        response.raise_for_status()
        return
    assert channel.host is not None and channel.sender is not None
    message = EmailMessage()
    message["Subject"] = _subject(alerts)
    message["From"] = channel.sender
    message["To"] = ", ".join(channel.recipients)
    message.set_content(_text(alerts) + "\n")
    context = ssl.create_default_context(cafile=str(channel.ca_file) if channel.ca_file else None)
    with smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout_seconds) as smtp:
        smtp.starttls(context=context)
        if channel.username:
            smtp.login(channel.username, channel.password or "")
        smtp.send_message(message)


class Alerter:
    """One pass at a time: reports what is new, rate-limited, to every channel."""

    def __init__(
        self,
        ledger: Ledger,
        config: AlertsConfig,
        send: Callable[[AlertChannel, Sequence[Alert]], None] = deliver,
    ) -> None:
        self.ledger = ledger
        self.config = config
        self.send = send

    def check(self) -> list[Alert]:
        """Report what is new unless a message went out less than ``min_interval_seconds`` ago;
        what was reported. If no channel took the message, it is tried again next pass."""
        now = self.ledger.clock()
        last = self.ledger.memo_get(ALERTS_MEMO, LAST_SENT)
        if last and now - datetime.fromisoformat(last) < timedelta(
            seconds=self.config.min_interval_seconds
        ):
            return []
        # Reserving first: of several workers, only one reports each alert.
        fresh = [
            a
            for a in due_alerts(self.ledger, self.config.review_queue_above)
            if self.ledger.memo_reserve(ALERTS_MEMO, a.key, now.isoformat())
        ]
        if not fresh:
            return []
        accepted = 0
        for channel in self.config.channels:
            try:
                self.send(channel, fresh)
                accepted += 1
            except Exception as exc:
                log.warning("alert to a %s channel failed: %s", channel.type, scrub(str(exc)))
        if not accepted:
            for alert in fresh:
                self.ledger.memo_delete(ALERTS_MEMO, alert.key)
            return []
        self.ledger.memo_set(ALERTS_MEMO, LAST_SENT, now.astimezone(UTC).isoformat())
        return fresh


class AlertWorker(threading.Thread):
    """Runs `Alerter.check` every ``interval_seconds`` until stopped."""

    def __init__(self, alerter: Alerter) -> None:
        super().__init__(name="alerts", daemon=True)
        self.alerter = alerter
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                sent = self.alerter.check()
                if sent:
                    log.info("alerts: %d reported", len(sent))
            except Exception:
                log.warning("alert pass failed; trying again later", exc_info=True)
            self.stopped.wait(self.alerter.config.interval_seconds)

    def stop(self) -> None:
        """Stop after the current pass."""
        self.stopped.set()
