"""``tie_break: review`` and ``on_no_match: review``: held, assigned by a person, or fallback."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from connector.adapters import CrmRecord
from connector.config.policy import DeliveryPolicy, MatchingPolicy
from connector.config.sections import QueueConfig
from connector.delivery.memo import LedgerMemo
from connector.delivery.pipeline import DeliveryPipeline
from connector.ledger.console import PIN_PREFIX, ConsoleLedger
from connector.ledger.ledger import Ledger
from connector.ledger.tables import DONE, REVIEW, SKIPPED, deliveries, delivery_attempts
from connector.payload import parse_report
from connector.services import Services
from tests.support.adapters import FakeCrm

ERIKA = CrmRecord(
    "contact",
    "K1",
    ("0211 63553400",),
    name="Erika",
    owner_id="o1",
    modified_at=datetime(2026, 1, 1, tzinfo=UTC),
)
ERIKA_TOO = CrmRecord(
    "contact",
    "K2",
    ("+49 211 63553400",),
    name="Erika (old)",
    modified_at=datetime(2020, 1, 1, tzinfo=UTC),
)


def pipeline(ledger: Ledger, crm: FakeCrm, **matching: Any) -> DeliveryPipeline:
    crm.bind_memo(LedgerMemo(ledger, "fakecrm"))
    policy = DeliveryPolicy(matching=MatchingPolicy(objects=("contact",), **matching))
    return DeliveryPipeline(ledger, {"fakecrm": crm}, QueueConfig(), policies={"fakecrm": policy})


def accept(ledger: Ledger, document: dict[str, Any]) -> int:
    ids = ledger.store_call(parse_report(document), json.dumps(document).encode(), ["fakecrm"])
    assert ids is not None
    return ids[0]


def row(ledger: Ledger, delivery_id: int) -> Any:
    with ledger.connection() as conn:
        return conn.execute(select(deliveries).where(deliveries.c.id == delivery_id)).one()


def due_now(ledger: Ledger, delivery_id: int, **values: Any) -> None:
    with ledger.engine.begin() as conn:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id == delivery_id)
            .values(next_attempt_at=ledger.clock(), **values)
        )


def test_an_ambiguous_call_is_held_then_logged_on_the_record_a_person_chose(
    services: Services, example_v1: dict[str, Any]
) -> None:
    ledger = services.ledger
    crm = FakeCrm([ERIKA, ERIKA_TOO])
    run = pipeline(ledger, crm, tie_break="review", review_hours=4)
    delivery = accept(ledger, example_v1)
    outcome = run.process(delivery)
    assert outcome is not None and outcome.status == REVIEW
    held = row(ledger, delivery)
    assert held.status == REVIEW and held.last_error == "Held for review (ambiguous)"
    review = held.refs["review"]
    assert [(c["id"], c["name"], c["matched_number"]) for c in review["candidates"]] == [
        ("K1", "Erika", "+4921163553400"),
        ("K2", "Erika (old)", "+4921163553400"),
    ]
    assert "match" not in held.refs and not hasattr(crm, "last_job")
    # Due again at its deadline: the relay sends it then, like any due delivery.
    assert ledger.take_due(timedelta(seconds=60)) == []
    assert timedelta(hours=3.9) < held.next_attempt_at - datetime.now(UTC) <= timedelta(hours=4)
    assert run.process(delivery) is None  # not due before its deadline

    record = {
        k: review["candidates"][1][k]
        for k in ("type", "id", "name", "owner_id", "parent_id", "extra")
    }
    ConsoleLedger(ledger.engine, ledger.clock).assign("otto", delivery, record)
    outcome = run.process(delivery)
    assert outcome is not None and outcome.status == DONE
    assert [r.id for r in crm.last_job.matches] == ["K2"]
    done = row(ledger, delivery)
    assert done.refs["match"]["status"] == "assigned"
    assert done.refs["match"]["assigned_by"] == "otto"
    with ledger.connection() as conn:
        history = conn.execute(
            select(delivery_attempts.c.attempt, delivery_attempts.c.status).where(
                delivery_attempts.c.delivery_id == delivery
            )
        ).all()
    assert [tuple(h) for h in history] == [(1, REVIEW), (2, DONE)]


def test_after_the_deadline_the_fallback_tie_break_applies(
    services: Services, example_v1: dict[str, Any]
) -> None:
    ledger = services.ledger
    crm = FakeCrm([ERIKA, ERIKA_TOO])
    run = pipeline(ledger, crm, tie_break="review", fallback_tie_break="most_recent")
    delivery = accept(ledger, example_v1)
    run.process(delivery)
    refs = dict(row(ledger, delivery).refs)
    refs["review"] = {
        **refs["review"],
        "since": (datetime.now(UTC) - timedelta(hours=25)).isoformat(),
    }
    due_now(ledger, delivery, refs=refs)
    outcome = run.process(delivery)
    assert outcome is not None and outcome.status == DONE
    assert [r.id for r in crm.last_job.matches] == ["K1"]  # the most recently modified
    assert row(ledger, delivery).refs["match"]["status"] == "ambiguous"


def test_a_retry_before_the_deadline_holds_again_without_extending_it(
    services: Services, example_v1: dict[str, Any]
) -> None:
    ledger = services.ledger
    run = pipeline(ledger, FakeCrm([ERIKA, ERIKA_TOO]), tie_break="review")
    delivery = accept(ledger, example_v1)
    run.process(delivery)
    first_deadline = row(ledger, delivery).next_attempt_at
    ConsoleLedger(ledger.engine, ledger.clock).retry_now("otto", delivery)
    run.process(delivery)
    again = row(ledger, delivery)
    assert again.status == REVIEW and again.next_attempt_at == first_deadline


def test_an_unmatched_call_is_held_and_the_fallback_is_skip(
    services: Services, example_v1: dict[str, Any]
) -> None:
    ledger = services.ledger
    run = pipeline(ledger, FakeCrm([]), on_no_match="review", fallback_on_no_match="skip")
    delivery = accept(ledger, example_v1)
    run.process(delivery)
    held = row(ledger, delivery)
    assert held.status == REVIEW and held.refs["review"]["candidates"] == []
    assert held.refs["review"]["reason"] == "unmatched"
    refs = dict(held.refs)
    refs["review"] = {**refs["review"], "since": "2000-01-01T00:00:00+00:00"}
    due_now(ledger, delivery, refs=refs)
    outcome = run.process(delivery)
    assert outcome is not None and (outcome.status, outcome.detail) == (
        SKIPPED,
        "no matching record",
    )


def test_a_single_match_is_not_held(services: Services, example_v1: dict[str, Any]) -> None:
    ledger = services.ledger
    crm = FakeCrm([ERIKA])
    run = pipeline(ledger, crm, tie_break="review", on_no_match="review")
    outcome = run.process(accept(ledger, example_v1))
    assert outcome is not None and outcome.status == DONE
    assert [r.id for r in crm.last_job.matches] == ["K1"]


def test_a_remembered_number_matches_the_pinned_record_without_a_search(
    services: Services, example_v1: dict[str, Any]
) -> None:
    ledger = services.ledger
    crm = FakeCrm([ERIKA, ERIKA_TOO])
    ledger.memo_set(
        "fakecrm",
        PIN_PREFIX + "+4921163553400",
        json.dumps({"type": "contact", "id": "K2", "name": "Erika (old)"}),
    )
    run = pipeline(ledger, crm, tie_break="review")
    outcome = run.process(accept(ledger, example_v1))
    assert outcome is not None and outcome.status == DONE
    assert [r.id for r in crm.last_job.matches] == ["K2"] and crm.searches == 0
