"""The ledger's guarantees: one copy per call id under concurrency, memos, parking, replay."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.delivery.memo import LedgerMemo
from connector.ledger.ledger import Ledger
from connector.ledger.tables import DEAD, PENDING
from connector.payload import parse_report
from connector.services import Services


def test_concurrent_deliveries_of_one_webhook_store_it_once(
    services: Services, example_v1: dict[str, Any]
) -> None:
    report = parse_report(example_v1)
    body = json.dumps(example_v1).encode()
    results: list[list[int] | None] = []
    barrier = threading.Barrier(8)

    def store() -> None:
        barrier.wait()
        results.append(services.ledger.store_call(report, body, ["a", "b"]))

    threads = [threading.Thread(target=store) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = [r for r in results if r is not None]
    assert len(stored) == 1 and len(stored[0]) == 2
    assert results.count(None) == 7
    assert len(services.ledger.recent_calls()) == 1


def test_memos_reserve_replace_and_delete(services: Services) -> None:
    memo = LedgerMemo(services.ledger, "crm")
    other = LedgerMemo(services.ledger, "other-crm")
    assert memo.reserve("k", "creating:1") is True
    assert memo.reserve("k", "creating:2") is False
    assert other.reserve("k", "x") is True  # memos are per target
    assert memo.replace("k", "creating:2", "stolen") is False  # compare and set
    assert memo.replace("k", "creating:1", "contact-7") is True
    assert memo.get("k") == "contact-7"
    memo.set("k", "contact-8")
    assert memo.get("k") == "contact-8"
    memo.delete("k")
    assert memo.get("k") is None
    assert memo.replace("k", None, "fresh") is True


def test_parking_a_target(services: Services) -> None:
    ledger: Ledger = services.ledger
    until = datetime.now(UTC) + timedelta(hours=3)
    ledger.park_target("crm", until, "daily limit")
    assert ledger.parked("crm") == (until, "daily limit")
    assert ledger.parked_targets() == {"crm": (until, "daily limit")}
    ledger.park_target("crm", datetime.now(UTC) - timedelta(seconds=1), "over")
    assert ledger.parked("crm") is None


def test_replay_makes_dead_deliveries_due_and_keeps_their_journal(
    services: Services, example_v1: dict[str, Any]
) -> None:
    ledger = services.ledger
    [delivery] = ledger.store_call(parse_report(example_v1), b"{}", ["crm"]) or []
    claim = ledger.claim(delivery, timedelta(seconds=60))
    assert claim is not None
    ledger.record_ref(claim, "call", "123")
    ledger.fail(claim, "token revoked")
    assert ledger.counts() == {DEAD: 1}
    assert ledger.replay(example_v1["call"]["id"]) == [delivery]
    [state] = ledger.recent_calls()[0].deliveries
    assert (state.status, state.attempts, state.refs) == (PENDING, 0, {"call": "123"})
