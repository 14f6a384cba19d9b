"""The relay: due deliveries become queue messages on time, whatever became of earlier ones."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from connector.delivery.relay import Relay
from connector.payload import parse_report
from connector.services import Services
from tests.support.clock import ManualClock


def make_relay(services: Services) -> Relay:
    return Relay(services.ledger, services.queue, interval=1.0, requeue_after=timedelta(minutes=5))


def accept(services: Services, document: dict[str, Any], call_id: str) -> int:
    document = {**document, "call": {**document["call"], "id": call_id}}
    ids = services.ledger.store_call(parse_report(document), json.dumps(document).encode(), ["w"])
    assert ids is not None
    return ids[0]


def test_a_wiped_queue_costs_no_requeue_wait(
    services: Services, example_v1: dict[str, Any]
) -> None:
    relay = make_relay(services)
    accept(services, example_v1, "first")
    assert relay.relay() == 1 and services.queue.pending() == 1
    accept(services, example_v1, "second")
    # A message waits in the queue: the first delivery's message is on its way, not re-sent.
    assert relay.relay() == 1 and services.queue.pending() == 2
    services.queue.huey.flush()  # a Redis restart, a deleted queue file
    assert relay.relay() == 2  # both sent again at once, not after requeue_after
    assert services.queue.pending() == 2


def test_the_relay_sleeps_until_the_next_delivery_falls_due(
    services: Services, example_v1: dict[str, Any], clock: ManualClock
) -> None:
    relay = make_relay(services)
    assert relay.pause() == 1.0  # nothing waits: the poll interval (new calls)
    delivery = accept(services, example_v1, "soon")
    claim = services.ledger.claim(delivery, timedelta(seconds=15))
    assert claim is not None
    services.ledger.retry_later(claim, "CRM down", clock.now + timedelta(seconds=0.25))
    assert relay.pause() == 0.25  # the retry is due before the next poll
    clock.advance(0.25)
    assert relay.relay() == 1
    assert relay.pause() == 1.0  # sent: its message is in the queue


def test_retries_go_ahead_of_a_backlog_of_new_calls(
    services: Services, example_v1: dict[str, Any], clock: ManualClock
) -> None:
    relay = make_relay(services)
    retried = accept(services, example_v1, "retried")
    claim = services.ledger.claim(retried, timedelta(seconds=15))
    assert claim is not None
    services.ledger.retry_later(claim, "CRM down", clock.now + timedelta(seconds=1))
    backlog = [accept(services, example_v1, f"new-{n}") for n in range(3)]
    assert relay.relay() == 3
    clock.advance(1)
    assert relay.relay() == 1
    order = [services.queue.huey.dequeue().args[0] for _ in range(4)]
    assert order == [retried, *backlog]
