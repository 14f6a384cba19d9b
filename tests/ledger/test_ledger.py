"""The ledger's guarantees: one copy per call id under concurrency, memos, parking, replay."""

from __future__ import annotations

import json
import os
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import SQLAlchemyError

from connector.delivery.memo import LedgerMemo
from connector.ledger.ledger import Ledger, LedgerFileGone, LedgerUnavailable, UnknownCall
from connector.ledger.tables import DEAD, DONE, PENDING, RETRYING
from connector.payload import parse_report
from connector.services import Services
from tests.support.clock import ManualClock


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


def test_parking_a_target(services: Services, clock: ManualClock) -> None:
    ledger: Ledger = services.ledger
    until = clock.now + timedelta(hours=3)
    ledger.park_target("crm", until, "daily limit")
    assert ledger.parked("crm") == (until, "daily limit")
    assert ledger.parked_targets() == {"crm": (until, "daily limit")}
    clock.now = until
    assert ledger.parked("crm") is None and ledger.parked_targets() == {}


def test_a_parked_target_keeps_since_when_it_is_parked(
    services: Services, clock: ManualClock
) -> None:
    ledger: Ledger = services.ledger
    first = clock.now
    ledger.park_target("crm", first + timedelta(hours=1), "daily limit")
    clock.advance(600)
    ledger.park_target("crm", first + timedelta(hours=2), "daily limit, again")  # still parked
    [parked] = ledger.parked_details()
    assert (parked.target, parked.since, parked.reason) == ("crm", first, "daily limit, again")
    assert parked.until == first + timedelta(hours=2)
    clock.now = first + timedelta(hours=3)  # the parking ran out; the next one starts anew
    ledger.park_target("crm", clock.now + timedelta(hours=1), "429")
    assert [p.since for p in ledger.parked_details()] == [clock.now]


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


def test_replay_failed_makes_retrying_deliveries_due_now(
    services: Services, example_v1: dict[str, Any], clock: ManualClock
) -> None:
    ledger = services.ledger
    retrying, done, dead = ledger.store_call(parse_report(example_v1), b"{}", ["a", "b", "c"]) or []
    for delivery, finish in (
        (retrying, lambda c: ledger.retry_later(c, "down", clock.now + timedelta(hours=1))),
        (done, lambda c: ledger.complete(c, {})),
        (dead, lambda c: ledger.fail(c, "revoked")),
    ):
        claim = ledger.claim(delivery, timedelta(seconds=15))
        assert claim is not None
        finish(claim)
    assert ledger.take_due(timedelta(seconds=60)) == []
    assert ledger.replay(failed=True) == [retrying]
    assert ledger.take_due(timedelta(seconds=60)) == [(retrying, False)]  # fresh attempts
    assert ledger.replay(dead=True) == [dead]
    statuses = {d.target: d.status for d in ledger.recent_calls()[0].deliveries}
    assert statuses == {"a": PENDING, "b": DONE, "c": PENDING}
    assert ledger.counts() == {PENDING: 2, DONE: 1}
    assert RETRYING not in ledger.counts()


def test_replay_of_an_unknown_call_id_says_so(services: Services) -> None:
    with pytest.raises(UnknownCall):
        services.ledger.replay("no-such-call")


def test_a_deleted_ledger_file_is_noticed_before_the_next_transaction(
    tmp_path: Path, example_v1: dict[str, Any]
) -> None:
    path = tmp_path / "connector.db"
    ledger = Ledger.from_url(f"sqlite:///{path}")
    ledger.migrate()
    ledger.ping()
    report = parse_report(example_v1)
    path.unlink()  # pooled connections still hold the unlinked file
    with pytest.raises(LedgerFileGone):
        ledger.ping()
    with pytest.raises(SQLAlchemyError):  # what the webhook turns into a 503
        ledger.store_call(report, b"{}", ["a"])
    # A new file in its place (a restore, a second `migrate`) is not the one this process had.
    Ledger.from_url(f"sqlite:///{path}").migrate()
    with pytest.raises(LedgerFileGone):
        ledger.ping()
    ledger.close()


def test_an_unwritable_ledger_is_one_line_at_start_up(tmp_path: Path) -> None:
    # What a read-only data folder does to SQLite (as root, permissions would not stop us).
    read_only = Ledger.from_url(f"sqlite:///file:{tmp_path / 'connector.db'}?mode=ro&uri=true")
    with pytest.raises(LedgerUnavailable) as raised:
        read_only.migrate()
    message = str(raised.value)
    assert "\n" not in message and "unable to open database file" in message
    assert f"Is the folder {tmp_path} writable?" in message
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with pytest.raises(LedgerUnavailable) as raised:
        Ledger.from_url(f"sqlite:///{blocked / 'data' / 'connector.db'}")
    assert "\n" not in str(raised.value) and os.fspath(blocked / "data") in str(raised.value)
