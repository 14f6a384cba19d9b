"""The delivery pipeline: claims, retries with backoff, parking, dead letters, journals."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from connector.adapters import PermanentError, RetryableError, TargetParked
from connector.config.sections import QueueConfig
from connector.delivery.pipeline import DeliveryPipeline, backoff_delay
from connector.ledger.ledger import Due, Ledger
from connector.ledger.tables import DEAD, DONE, PROCESSING, RETRYING, deliveries
from connector.payload import parse_report
from connector.services import Services
from tests.support.adapters import ScriptedAdapter
from tests.support.clock import ManualClock


def accept(
    ledger: Ledger, document: dict[str, Any], targets: tuple[str, ...] = ("scripted",)
) -> int:
    import json

    ids = ledger.store_call(parse_report(document), json.dumps(document).encode(), targets)
    assert ids is not None
    return ids[0]


def make_pipeline(services: Services, adapter: ScriptedAdapter, **queue: Any) -> DeliveryPipeline:
    config = QueueConfig(**{"retry_base_seconds": 10, "retry_max_seconds": 600, **queue})
    return DeliveryPipeline(services.ledger, {"scripted": adapter}, config)


def state(ledger: Ledger, delivery_id: int) -> Any:
    [row] = [
        d for c in ledger.recent_calls(100) for d in c.deliveries if d.delivery_id == delivery_id
    ]
    return row


def test_success_marks_done_with_refs(services: Services, example_v1: dict[str, Any]) -> None:
    adapter = ScriptedAdapter()
    pipeline = make_pipeline(services, adapter)
    delivery = accept(services.ledger, example_v1)
    outcome = pipeline.process(delivery)
    assert outcome is not None and outcome.status == DONE
    row = state(services.ledger, delivery)
    assert row.status == DONE and row.attempts == 1
    assert row.refs == {"record": f"rec-{example_v1['call']['id']}"}
    assert pipeline.process(delivery) is None  # done is final; a duplicate message does nothing
    assert adapter.written == [example_v1["call"]["id"]]


def test_retryable_error_makes_the_delivery_due_later(
    services: Services, example_v1: dict[str, Any], clock: ManualClock
) -> None:
    adapter = ScriptedAdapter([RetryableError("CRM down")])
    pipeline = make_pipeline(services, adapter)
    delivery = accept(services.ledger, example_v1)
    assert pipeline.process(delivery).status == RETRYING  # type: ignore[union-attr]
    row = state(services.ledger, delivery)
    assert row.status == RETRYING and row.last_error == "CRM down"
    # Attempt 1 waits between base/2 and base seconds; the ledger knows when, the queue does not.
    assert clock.now + timedelta(seconds=5) <= row.next_attempt_at <= clock.now + timedelta(10)
    assert services.ledger.next_due() == row.next_attempt_at
    assert pipeline.process(delivery) is None  # not due yet
    clock.now = row.next_attempt_at
    assert services.ledger.take_due(timedelta(seconds=60)) == [Due(delivery, again=True)]
    assert pipeline.process(delivery).status == DONE  # type: ignore[union-attr]


def test_the_retry_sees_the_journal_of_the_failed_attempt(
    services: Services, example_v1: dict[str, Any], clock: ManualClock
) -> None:
    adapter = ScriptedAdapter([RetryableError("timeout after create")])
    pipeline = make_pipeline(services, adapter)
    delivery = accept(services.ledger, example_v1)
    pipeline.process(delivery)
    clock.advance(11)
    assert pipeline.process(delivery).status == DONE  # type: ignore[union-attr]
    assert adapter.journals == [{}, {"record": f"rec-{example_v1['call']['id']}"}]


def test_retry_after_is_a_floor(
    services: Services, example_v1: dict[str, Any], clock: ManualClock
) -> None:
    pipeline = make_pipeline(services, ScriptedAdapter([RetryableError("429", retry_after=120)]))
    delivery = accept(services.ledger, example_v1)
    pipeline.process(delivery)
    assert state(services.ledger, delivery).next_attempt_at >= clock.now + timedelta(seconds=120)


def test_permanent_error_is_dead_with_the_reason(
    services: Services, example_v1: dict[str, Any]
) -> None:
    pipeline = make_pipeline(services, ScriptedAdapter([PermanentError("401: token revoked")]))
    delivery = accept(services.ledger, example_v1)
    assert pipeline.process(delivery).status == DEAD  # type: ignore[union-attr]
    row = state(services.ledger, delivery)
    assert (row.status, row.last_error) == (DEAD, "401: token revoked")
    assert services.ledger.next_due() is None
    # An operator fixes the token and replays.
    assert services.ledger.replay(dead=True) == [delivery]
    assert pipeline.process(delivery).status == DONE  # type: ignore[union-attr]


def test_unexpected_exceptions_are_retried_without_their_message(
    services: Services, example_v1: dict[str, Any]
) -> None:
    pipeline = make_pipeline(services, ScriptedAdapter([KeyError("+4921163553400")]))
    delivery = accept(services.ledger, example_v1)
    assert pipeline.process(delivery).status == RETRYING  # type: ignore[union-attr]
    assert state(services.ledger, delivery).last_error == "Unexpected KeyError"


def test_three_unexpected_failures_make_a_delivery_dead_until_replayed(
    services: Services, example_v1: dict[str, Any], clock: ManualClock
) -> None:
    errors: list[Exception] = [OverflowError("10**30"), KeyError("x"), OverflowError("again")]
    pipeline = make_pipeline(services, ScriptedAdapter([*errors, OverflowError("after replay")]))
    delivery = accept(services.ledger, example_v1)
    outcomes = []
    for _ in errors:
        outcome = pipeline.process(delivery)
        assert outcome is not None
        outcomes.append(outcome.status)
        clock.advance(3600)  # long before the 72 h give-up age
    assert outcomes == [RETRYING, RETRYING, DEAD]
    row = state(services.ledger, delivery)
    assert row.last_error.startswith("Unexpected OverflowError in 3 attempts")
    assert pipeline.process(delivery) is None
    # Replay starts the count again: one more unexpected failure is a retry, not dead.
    assert services.ledger.replay(example_v1["call"]["id"]) == [delivery]
    assert pipeline.process(delivery).status == RETRYING  # type: ignore[union-attr]


def test_parked_target_waits_without_using_attempts(
    services: Services, example_v1: dict[str, Any], clock: ManualClock
) -> None:
    tomorrow = clock.now + timedelta(hours=5)
    adapter = ScriptedAdapter([TargetParked("daily API limit reached", until=tomorrow)])
    pipeline = make_pipeline(services, adapter)
    first = accept(services.ledger, example_v1)
    example_v1["call"]["id"] = "second-call"
    second = accept(services.ledger, example_v1)
    pipeline.process(first)
    assert services.ledger.parked("scripted") is not None
    assert pipeline.process(second).detail == "target parked"  # type: ignore[union-attr]
    for delivery in (first, second):
        row = state(services.ledger, delivery)
        assert row.status == RETRYING and row.attempts == 0
        assert row.next_attempt_at == tomorrow
    assert adapter.written == []
    assert services.ledger.next_due() == tomorrow
    clock.now = tomorrow
    due = sorted(services.ledger.take_due(timedelta(seconds=60)))
    assert due == [Due(first, False), Due(second, False)]


def test_gives_up_after_the_configured_age(
    services: Services, example_v1: dict[str, Any], clock: ManualClock
) -> None:
    pipeline = make_pipeline(
        services, ScriptedAdapter([RetryableError("still down")] * 2), give_up_after_hours=1
    )
    delivery = accept(services.ledger, example_v1)
    clock.advance(2 * 3600)  # the CRM was down for two hours before the worker came
    assert pipeline.process(delivery).status == DEAD  # type: ignore[union-attr]
    assert state(services.ledger, delivery).last_error == "Gave up after 1 attempts: still down"
    # After the outage an operator replays it: the age counts from the replay.
    services.ledger.replay(dead=True)
    assert pipeline.process(delivery).status == RETRYING  # type: ignore[union-attr]


def test_a_delivery_whose_attempts_never_finish_ends_dead(
    services: Services, example_v1: dict[str, Any], clock: ManualClock
) -> None:
    pipeline = make_pipeline(services, ScriptedAdapter(), give_up_after_hours=1)
    delivery = accept(services.ledger, example_v1)
    assert services.ledger.claim(delivery, timedelta(seconds=1)) is not None  # a worker crashes
    clock.advance(2 * 3600)
    outcome = pipeline.process(delivery)
    assert outcome is not None and outcome.status == DEAD
    assert "the previous attempt did not finish" in state(services.ledger, delivery).last_error


class TakenOver(ScriptedAdapter):
    """Writes, then, while it works, its lease runs out and another worker claims the delivery."""

    def __init__(self, ledger: Ledger, clock: ManualClock, lease: float) -> None:
        super().__init__()
        self.ledger = ledger
        self.clock = clock
        self.lease = lease
        self.delivery_id = 0

    def write(self, job: Any, journal: Any) -> Any:
        self.clock.advance(self.lease + 1)  # no heartbeat ran (a frozen process)
        assert self.ledger.claim(self.delivery_id, timedelta(seconds=self.lease)) is not None
        journal.record("call", "crm-1")
        return super().write(job, journal)


def test_a_lost_lease_is_noticed_and_nothing_is_overwritten(
    services: Services, example_v1: dict[str, Any], clock: ManualClock
) -> None:
    adapter = TakenOver(services.ledger, clock, lease=15)
    pipeline = make_pipeline(services, adapter, lease_seconds=15)
    delivery = adapter.delivery_id = accept(services.ledger, example_v1)
    outcome = pipeline.process(delivery)
    assert outcome is not None and outcome.detail == "lease lost"
    row = state(services.ledger, delivery)
    assert row.status == PROCESSING and "call" not in row.refs  # left to the new holder
    assert row.attempts == 2


class Slow(ScriptedAdapter):
    """Each write takes `seconds` of the test clock, running `during` (a heartbeat) meanwhile."""

    def __init__(self, clock: ManualClock, seconds: float, during: Any = None) -> None:
        super().__init__()
        self.clock, self.seconds, self.during = clock, seconds, during

    def write(self, job: Any, journal: Any) -> Any:
        for _ in range(int(self.seconds)):
            self.clock.advance(1)
            if self.during is not None and int(self.clock.now.timestamp()) % 5 == 0:
                self.during()
        return super().write(job, journal)


def test_a_heartbeat_keeps_a_long_attempt_its_delivery(
    services: Services, example_v1: dict[str, Any], clock: ManualClock
) -> None:
    pipeline = make_pipeline(services, ScriptedAdapter(), lease_seconds=15)
    ledger = services.ledger
    pipeline.adapters = {"scripted": Slow(clock, 120, during=lambda: pipeline.leases.renew())}
    delivery = accept(ledger, example_v1)
    outcome = pipeline.process(delivery)  # two minutes, eight leases long
    assert outcome is not None and outcome.status == DONE
    assert state(ledger, delivery).attempts == 1


def test_without_a_heartbeat_an_attempt_stops_when_its_lease_ran_out(
    services: Services, example_v1: dict[str, Any], clock: ManualClock
) -> None:
    pipeline = make_pipeline(services, ScriptedAdapter(), lease_seconds=15)
    pipeline.adapters = {"scripted": Slow(clock, 20)}
    delivery = accept(services.ledger, example_v1)
    outcome = pipeline.process(delivery)
    # Nobody took the delivery yet, but the holder cannot know that nobody will: it stops
    # before its next step (ScriptedAdapter looks in the journal before recording).
    assert outcome is not None and outcome.detail == "lease lost"
    row = state(services.ledger, delivery)
    assert row.status == PROCESSING and row.refs == {}
    clock.advance(1)
    assert services.ledger.take_due(timedelta(seconds=60)) == [Due(delivery, again=True)]


def test_a_heartbeat_finds_a_lease_taken_over(
    services: Services, example_v1: dict[str, Any], clock: ManualClock
) -> None:
    pipeline = make_pipeline(services, ScriptedAdapter(), lease_seconds=15)
    ledger = services.ledger
    delivery = accept(ledger, example_v1)
    claim = ledger.claim(delivery, timedelta(seconds=15))
    assert claim is not None
    held = pipeline.leases.hold(claim, clock.now)
    clock.advance(10)
    pipeline.leases.renew()
    assert held.valid_until == clock.now + timedelta(seconds=15) and not held.lost
    clock.advance(16)
    assert ledger.claim(delivery, timedelta(seconds=15)) is not None  # another worker
    pipeline.leases.renew()
    assert held.lost


def test_journal_entries_renew_the_lease(
    services: Services, example_v1: dict[str, Any], clock: ManualClock
) -> None:
    delivery = accept(services.ledger, example_v1)
    claim = services.ledger.claim(delivery, timedelta(seconds=5))
    assert claim is not None
    services.ledger.record_ref(claim, "call", "1", renew=timedelta(seconds=600))
    with services.ledger.engine.connect() as conn:
        lease = conn.execute(select(deliveries.c.lease_until)).scalar_one()
    assert lease == clock.now + timedelta(seconds=600)


def test_a_lease_excludes_other_workers_until_it_expires(
    services: Services, example_v1: dict[str, Any], clock: ManualClock
) -> None:
    delivery = accept(services.ledger, example_v1)
    claim = services.ledger.claim(delivery, timedelta(seconds=15))
    assert claim is not None and claim.attempts == 1
    assert services.ledger.claim(delivery, timedelta(seconds=15)) is None
    assert state(services.ledger, delivery).status == PROCESSING
    assert services.ledger.next_due() == clock.now + timedelta(seconds=15)
    # The worker dies; its lease runs out; the relay finds it and another worker takes it.
    clock.advance(14)
    assert services.ledger.take_due(timedelta(seconds=60)) == []
    clock.advance(2)
    assert services.ledger.take_due(timedelta(seconds=60)) == [Due(delivery, again=True)]
    second = services.ledger.claim(delivery, timedelta(seconds=15))
    assert second is not None and second.attempts == 2
    # The dead worker's late result cannot overwrite the new holder's, nor renew its lease.
    assert services.ledger.renew([claim, second], timedelta(seconds=15)) == {second.token}
    assert services.ledger.complete(claim, {"late": True}) is False
    assert services.ledger.complete(second, {"ok": True}) is True


def test_removed_target_is_dead(services: Services, example_v1: dict[str, Any]) -> None:
    pipeline = make_pipeline(services, ScriptedAdapter())
    delivery = accept(services.ledger, example_v1, targets=("gone",))
    assert pipeline.process(delivery).status == DEAD  # type: ignore[union-attr]


def test_a_queued_delivery_is_sent_again_after_requeue_after(
    services: Services, example_v1: dict[str, Any], clock: ManualClock
) -> None:
    delivery = accept(services.ledger, example_v1)
    assert services.ledger.take_due(timedelta(seconds=60)) == [Due(delivery, again=False)]
    assert services.ledger.take_due(timedelta(seconds=60)) == []  # a message is on its way
    clock.advance(61)  # ... and it was lost while other messages waited: after requeue_after
    assert services.ledger.take_due(timedelta(seconds=60)) == [Due(delivery, again=False)]
    # With the queue empty, the relay knows the message is gone: at once.
    assert services.ledger.take_due(timedelta(seconds=60), resend=True) == [(delivery, False)]


def test_a_message_that_comes_early_costs_no_wait(
    services: Services, example_v1: dict[str, Any], clock: ManualClock
) -> None:
    pipeline = make_pipeline(services, ScriptedAdapter([RetryableError("down")]))
    delivery = accept(services.ledger, example_v1)
    services.ledger.take_due(timedelta(seconds=300))
    pipeline.process(delivery)
    due = state(services.ledger, delivery).next_attempt_at
    assert services.ledger.take_due(timedelta(seconds=300)) == []  # not due yet
    # A message (a replayed one, one rounded to whole seconds) arrives a little early ...
    clock.now = due - timedelta(seconds=0.6)
    assert pipeline.process(delivery) is None
    # ... and is no reason to wait requeue_after: the relay sends it again when it is due.
    assert services.ledger.next_due() == due
    clock.now = due
    assert services.ledger.take_due(timedelta(seconds=300)) == [Due(delivery, again=True)]
    assert services.ledger.take_due(timedelta(seconds=300)) == []  # once
    assert pipeline.process(delivery).status == DONE  # type: ignore[union-attr]


@pytest.mark.parametrize("attempt", [1, 2, 5, 12, 40])
def test_backoff_grows_is_capped_and_jittered(attempt: int) -> None:
    rng = random.Random(attempt)
    delays = [backoff_delay(attempt, 30, 3600, rng=rng) for _ in range(200)]
    expected = min(3600, 30 * 2 ** (attempt - 1))
    assert all(expected / 2 <= d <= expected for d in delays)
    assert len({round(d, 3) for d in delays}) > 100  # spread out, not synchronised


def test_a_filtered_call_is_skipped_with_its_reason(
    services: Services, example_v1: dict[str, Any]
) -> None:
    from connector.config.policy import DeliveryPolicy, Filters

    adapter = ScriptedAdapter()
    pipeline = DeliveryPipeline(
        services.ledger,
        {"scripted": adapter},
        QueueConfig(),
        policies={"scripted": DeliveryPolicy(filters=Filters(directions=("OUT",)))},
    )
    delivery = accept(services.ledger, example_v1)
    outcome = pipeline.process(delivery)
    assert outcome is not None and outcome.status == "skipped"
    row = state(services.ledger, delivery)
    assert (row.status, row.last_error) == ("skipped", "direction IN is not taken by this target")
    assert adapter.written == []


def test_unmatched_calls_are_listed_by_status_unmatched(
    services: Services, example_v1: dict[str, Any], tmp_path: Any
) -> None:
    from click.testing import CliRunner

    from connector.cli import main
    from connector.config.policy import DeliveryPolicy, MatchingPolicy
    from tests.support.adapters import FakeCrm

    crm = FakeCrm([])
    policy = DeliveryPolicy(
        matching=MatchingPolicy(objects=("contact",), on_no_match="log_unmatched")
    )
    pipeline = DeliveryPipeline(
        services.ledger, {"scripted": crm}, QueueConfig(), policies={"scripted": policy}
    )
    delivery = accept(services.ledger, example_v1)
    assert pipeline.process(delivery).status == DONE  # type: ignore[union-attr]
    assert state(services.ledger, delivery).refs["match"]["status"] == "unmatched"
    config = services.config.source
    assert config is not None
    result = CliRunner().invoke(main, ["status", "--config", str(config), "--unmatched"])
    assert example_v1["call"]["id"] in result.output and "[unmatched]" in result.output
