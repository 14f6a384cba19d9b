"""Alerts: what is reported, once, rate-limited, and what reaches Slack, Teams, HTTP and SMTP."""

from __future__ import annotations

import dataclasses
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from connector.config.sections import AlertChannel, AlertsConfig, Config, RetentionConfig
from connector.delivery.alerts import ALERTS_MEMO, LAST_SENT, Alert, Alerter, AlertWorker, deliver
from connector.delivery.retention import apply_retention, purge_call
from connector.ledger.tables import deliveries, target_memos
from connector.payload import parse_report
from connector.problems import ConfigError
from connector.services import Services
from tests.support.clock import ManualClock

CALLER_DIGITS = "2111234567"
LEASE = timedelta(seconds=30)


def _store(services: Services, document: dict[str, Any], call_id: str) -> list[int]:
    document["call"]["id"] = call_id
    ids = services.ledger.store_call(
        parse_report(document), json.dumps(document).encode(), ("warehouse", "crm")
    )
    assert ids
    return ids


def _kill(services: Services, delivery: int, error: str) -> None:
    claim = services.ledger.claim(delivery, LEASE)
    assert claim is not None
    assert services.ledger.fail(claim, error)


def _mark_for_review(services: Services, delivery: int, status: str) -> None:
    claim = services.ledger.claim(delivery, LEASE)
    assert claim is not None
    services.ledger.record_ref(claim, "match", {"status": status})


class Recorder:
    """A channel sender that keeps what it was asked to send, or fails while `failing`."""

    def __init__(self) -> None:
        self.sent: list[list[Alert]] = []
        self.failing = False

    def __call__(self, channel: AlertChannel, alerts: Sequence[Alert]) -> None:
        if self.failing:
            raise ConnectionError("receiver down")
        self.sent.append(list(alerts))


CHANNEL = AlertChannel(type="http", url="http://127.0.0.1:9/alerts")


def _alerter(services: Services, recorder: Recorder, **settings: Any) -> Alerter:
    config = AlertsConfig(channels=(CHANNEL,), **{"min_interval_seconds": 300, **settings})
    return Alerter(services.ledger, config, send=recorder)


def test_a_dead_delivery_is_reported_once_with_a_scrubbed_reason_even_after_a_restart(
    services: Services, example_v1: dict[str, Any], clock: ManualClock
) -> None:
    ids = _store(services, example_v1, "call-dead-1")
    _kill(services, ids[1], f"CRM rejected contact +49 {CALLER_DIGITS[:3]} {CALLER_DIGITS[3:]}")
    recorder = Recorder()

    reported = _alerter(services, recorder).check()

    assert [(a.kind, a.target, a.call_id) for a in reported] == [("dead", "crm", "call-dead-1")]
    assert CALLER_DIGITS[3:] not in reported[0].reason
    assert "CRM rejected contact" in reported[0].reason
    clock.advance(3600)
    assert _alerter(services, Recorder()).check() == []  # a new process: nothing twice
    assert len(recorder.sent) == 1


def test_new_alerts_wait_for_the_minimum_interval_and_then_go_out_together(
    services: Services, example_v1: dict[str, Any], clock: ManualClock
) -> None:
    recorder = Recorder()
    alerter = _alerter(services, recorder)
    first = _store(services, example_v1, "call-a")
    _kill(services, first[0], "boom")
    assert len(alerter.check()) == 1
    second = _store(services, example_v1, "call-b")
    _kill(services, second[0], "boom")
    _kill(services, second[1], "boom")

    clock.advance(299)
    assert alerter.check() == []
    clock.advance(2)
    assert sorted(a.call_id or "" for a in alerter.check()) == ["call-b", "call-b"]
    assert [len(batch) for batch in recorder.sent] == [1, 2]


def test_the_review_queue_is_reported_when_too_long_and_again_only_after_it_was_short(
    services: Services, example_v1: dict[str, Any], clock: ManualClock
) -> None:
    recorder = Recorder()
    alerter = _alerter(services, recorder, review_queue_above=1, min_interval_seconds=0)
    ids = _store(services, example_v1, "call-r")
    _mark_for_review(services, ids[0], "unmatched")
    assert alerter.check() == []
    _mark_for_review(services, ids[1], "ambiguous")

    reported = alerter.check()

    assert [(a.kind, a.reason) for a in reported] == [
        ("review-queue", "2 deliveries await review, more than 1 (crm 1, warehouse 1)")
    ]
    assert alerter.check() == []
    with services.ledger.engine.begin() as conn:
        conn.execute(update(deliveries).where(deliveries.c.id == ids[1]).values(refs={}))
    assert alerter.check() == []  # short again: re-armed
    with services.ledger.engine.begin() as conn:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id == ids[1])
            .values(refs={"match": {"status": "unmatched"}})
        )
    assert [a.kind for a in alerter.check()] == ["review-queue"]


def test_a_parked_target_is_reported_once_per_parking(
    services: Services, clock: ManualClock
) -> None:
    recorder = Recorder()
    alerter = _alerter(services, recorder, min_interval_seconds=0)
    services.ledger.park_target("crm", clock() + timedelta(hours=2), "daily limit of 250000")

    reported = alerter.check()

    assert [(a.kind, a.target) for a in reported] == [("parked", "crm")]
    assert "daily limit" in reported[0].reason
    assert alerter.check() == []
    services.ledger.park_target("crm", clock() + timedelta(hours=5), "daily limit again")
    assert [a.kind for a in alerter.check()] == ["parked"]


def test_when_no_channel_takes_the_message_it_is_tried_again(
    services: Services, example_v1: dict[str, Any]
) -> None:
    recorder = Recorder()
    alerter = _alerter(services, recorder)
    ids = _store(services, example_v1, "call-retry")
    _kill(services, ids[0], "boom")
    recorder.failing = True
    assert alerter.check() == []
    recorder.failing = False
    assert [a.call_id for a in alerter.check()] == ["call-retry"]


def _memos(services: Services) -> list[str]:
    with services.ledger.connection() as conn:
        return sorted(
            conn.execute(
                select(target_memos.c.key).where(target_memos.c.target == ALERTS_MEMO)
            ).scalars()
        )


def test_the_retention_pass_forgets_memos_of_alerts_that_cannot_come_up_again(
    services: Services, example_v1: dict[str, Any], clock: ManualClock
) -> None:
    recorder = Recorder()
    alerter = _alerter(services, recorder, min_interval_seconds=0)
    replayed = _store(services, example_v1, "call-replayed")
    erased = _store(services, example_v1, "call-erased")
    kept = _store(services, example_v1, "call-still-dead")
    for delivery in (replayed[1], erased[1], kept[1]):
        _kill(services, delivery, "boom")
    services.ledger.park_target("crm", clock() + timedelta(hours=1), "daily limit")
    assert len(alerter.check()) == 4
    assert len(_memos(services)) == 5  # four alerts and the time of the last message

    services.ledger.replay("call-replayed", dead=True)
    purge_call(services.ledger, {}, "call-erased")
    clock.advance(3601)  # the parking is over
    purged = apply_retention(services.ledger, RetentionConfig(), {}, now=clock())

    assert purged.memos == 3
    left = [m for m in _memos(services) if m != LAST_SENT]
    assert len(left) == 1 and left[0].startswith(f"dead:{kept[1]}:")
    assert alerter.check() == []  # the one still dead is not reported twice
    assert apply_retention(services.ledger, RetentionConfig(), {}, now=clock()).memos == 0
    _kill(services, replayed[1], "boom again")  # dead again after its replay: a new alert
    assert [a.call_id for a in alerter.check()] == ["call-replayed"]


# --- real channels: a local HTTP receiver and a local SMTP server with STARTTLS ----------------


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, dict[str, str], Any]]]]:
    """An HTTP server on 127.0.0.1 that keeps every POST (path, headers, JSON body)."""
    received: list[tuple[str, dict[str, str], Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, dict(self.headers), json.loads(body)))
            status = 500 if self.path == "/broken" else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


ALERTS = [
    Alert("dead:1", "dead", "crm", "HTTP 400 from the CRM", "call-42"),
    Alert("parked:crm:x", "parked", "hubspot", "parked until 2026-12-03T00:00:00+00:00: limit"),
]


def test_slack_teams_and_http_channels_post_their_documented_bodies(
    receiver: tuple[str, list[tuple[str, dict[str, str], Any]]],
) -> None:
    base, received = receiver
    for kind in ("slack", "teams", "http"):
        deliver(AlertChannel(type=kind, url=f"{base}/{kind}", headers={"X-Key": "k1"}), ALERTS)

    bodies = {path: body for path, _, body in received}
    assert all(headers["X-Key"] == "k1" for _, headers, _ in received)
    assert "[dead] crm call call-42: HTTP 400 from the CRM" in bodies["/slack"]["text"]
    card = bodies["/teams"]["attachments"][0]
    assert bodies["/teams"]["type"] == "message"
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    texts = [block["text"] for block in card["content"]["body"]]
    assert texts[0] == "sipgate-crm-connector: 2 alert(s) (dead, parked)"
    assert bodies["/http"]["alerts"][0] == {
        "kind": "dead",
        "target": "crm",
        "call_id": "call-42",
        "reason": "HTTP 400 from the CRM",
    }


def test_a_channel_that_answers_with_an_error_raises(
    receiver: tuple[str, list[tuple[str, dict[str, str], Any]]],
) -> None:
    base, _ = receiver
    with pytest.raises(Exception, match="500"):
        deliver(AlertChannel(type="http", url=f"{base}/broken"), ALERTS)


class Mailbox:
    """An aiosmtpd handler that keeps each message and whether it came over TLS."""

    def __init__(self) -> None:
        self.messages: list[tuple[bool, str, list[str], str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (
                session.ssl is not None,
                envelope.mail_from,
                envelope.rcpt_tos,
                envelope.content.decode(),
            )
        )
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[tuple[Mailbox, AlertChannel]]:
    """An SMTP server on 127.0.0.1 that requires STARTTLS (a trustme certificate), and an e-mail
    channel to it that trusts that certificate's CA."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    mailbox = Mailbox()
    port = _free_port()
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True
    )
    controller.start()
    channel = AlertChannel(
        type="email",
        host="127.0.0.1",
        port=port,
        sender="connector@example.com",
        recipients=("ops@example.com", "oncall@example.com"),
        ca_file=tmp_path / "ca.pem",
    )
    yield mailbox, channel
    controller.stop()


def test_e_mail_goes_over_starttls_to_every_recipient(
    smtp: tuple[Mailbox, AlertChannel],
) -> None:
    mailbox, channel = smtp

    deliver(channel, ALERTS)

    [(over_tls, sender, recipients, content)] = mailbox.messages
    assert over_tls
    assert (sender, recipients) == (
        "connector@example.com",
        ["ops@example.com", "oncall@example.com"],
    )
    assert "Subject: sipgate-crm-connector: 2 alert(s) (dead, parked)" in content
    assert "[dead] crm call call-42: HTTP 400 from the CRM" in content


def test_e_mail_is_not_sent_to_a_server_whose_certificate_is_not_trusted(
    smtp: tuple[Mailbox, AlertChannel], tmp_path: Path
) -> None:
    mailbox, channel = smtp
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "other.pem"))

    with pytest.raises(ssl.SSLError):
        deliver(dataclasses.replace(channel, ca_file=tmp_path / "other.pem"), ALERTS)

    assert mailbox.messages == []


# --- configuration -------------------------------------------------------------------------


def test_the_alerts_section_loads_channels_with_paths_relative_to_the_file(
    write_config: Callable[..., Config], tmp_path: Path
) -> None:
    config = write_config(
        alerts={
            "review_queue_above": 10,
            "channels": [
                {"type": "slack", "url": "https://hooks.slack.com/services/T/B/X"},
                {
                    "type": "email",
                    "host": "smtp.example.com",
                    "sender": "c@example.com",
                    "recipients": ["ops@example.com"],
                    "ca_file": "ca.pem",
                },
            ],
        }
    )

    assert config.alerts.review_queue_above == 10
    assert config.alerts.min_interval_seconds == 300
    slack, email = config.alerts.channels
    assert slack.url == "https://hooks.slack.com/services/T/B/X"
    assert email.recipients == ("ops@example.com",)
    assert email.ca_file == (tmp_path / "ca.pem").resolve()


@pytest.mark.parametrize(
    ("channel", "path"),
    [
        ({"type": "teams"}, "alerts.channels[0].url"),
        (
            {"type": "email", "sender": "c@example.com", "recipients": ["o@example.com"]},
            "alerts.channels[0].host",
        ),
        ({"type": "pager", "url": "https://example.com"}, "alerts.channels[0].type"),
    ],
)
def test_an_incomplete_channel_is_a_config_problem(
    write_config: Callable[..., Config], channel: dict[str, Any], path: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        write_config(alerts={"channels": [channel]})
    assert path in [p.path for p in caught.value.problems]


def test_the_alert_worker_reports_a_dead_delivery_to_a_real_receiver(
    services: Services,
    example_v1: dict[str, Any],
    receiver: tuple[str, list[tuple[str, dict[str, str], Any]]],
) -> None:
    base, received = receiver
    ids = _store(services, example_v1, "call-worker")
    _kill(services, ids[0], "CRM answered 403")
    config = AlertsConfig(
        channels=(AlertChannel(type="http", url=f"{base}/ops"),), interval_seconds=1
    )
    worker = AlertWorker(Alerter(services.ledger, config))
    worker.start()
    try:
        for _ in range(200):
            if received:
                break
            worker.stopped.wait(0.05)
    finally:
        worker.stop()
        worker.join()

    [(path, _, body)] = received
    assert path == "/ops"
    assert body["alerts"] == [
        {
            "kind": "dead",
            "target": "warehouse",
            "call_id": "call-worker",
            "reason": "CRM answered 403",
        }
    ]
    document = json.dumps(body)
    assert example_v1["call"]["from"][-6:] not in document
    assert example_v1["assist"]["transcription"]["content"].split("\n")[0] not in document
