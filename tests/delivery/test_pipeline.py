"""The delivery pipeline: claims, retries with backoff, parking, dead letters, journals."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from connector.adapters import PermanentError, RetryableError, TargetParked
from connector.config.sections import QueueConfig
from connector.delivery.pipeline import DeliveryPipeline, backoff_delay
from connector.ledger.ledger import Ledger
from connector.ledger.tables import DEAD, DONE, PROCESSING, RETRYING, deliveries
from connector.payload import parse_report
from connector.services import Services
from tests.support.adapters import ScriptedAdapter


def accept(
    ledger: Ledger, document: dict[str, Any], targets: tuple[str, ...] = ("scripted",)
) -> int:
    import json

    ids = ledger.store_call(parse_report(document), json.dumps(document).encode(), targets)
    assert ids is not None
    return ids[0]


def make_pipeline(
    services: Services, adapter: ScriptedAdapter, **queue: Any
) -> tuple[DeliveryPipeline, list[tuple[int, datetime]]]:
    scheduled: list[tuple[int, datetime]] = []
    config = QueueConfig(**{"retry_base_seconds": 10, "retry_max_seconds": 600, **queue})
    pipeline = DeliveryPipeline(
        services.ledger,
        {"scripted": adapter},
        config,
        schedule=lambda i, at: scheduled.append((i, at)),
    )
    return pipeline, scheduled


def state(ledger: Ledger, delivery_id: int) -> Any:
    [row] = [
        d for c in ledger.recent_calls(100) for d in c.deliveries if d.delivery_id == delivery_id
    ]
    return row


def test_success_marks_done_with_refs(services: Services, example_v1: dict[str, Any]) -> None:
    adapter = ScriptedAdapter()
    pipeline, _ = make_pipeline(services, adapter)
    delivery = accept(services.ledger, example_v1)
    outcome = pipeline.process(delivery)
    assert outcome is not None and outcome.status == DONE
    row = state(services.ledger, delivery)
    assert row.status == DONE and row.attempts == 1
    assert row.refs == {"record": f"rec-{example_v1['call']['id']}"}
    assert pipeline.process(delivery) is None  # done is final; a duplicate message does nothing
    assert adapter.written == [example_v1["call"]["id"]]


def test_retryable_error_schedules_a_later_attempt(
    services: Services, example_v1: dict[str, Any]
) -> None:
    adapter = ScriptedAdapter([RetryableError("CRM down")])
    pipeline, scheduled = make_pipeline(services, adapter)
    delivery = accept(services.ledger, example_v1)
    before = datetime.now(UTC)
    assert pipeline.process(delivery).status == RETRYING  # type: ignore[union-attr]
    row = state(services.ledger, delivery)
    assert row.status == RETRYING and row.last_error == "CRM down"
    # Attempt 1 waits between base/2 and base seconds.
    assert before + timedelta(seconds=5) <= row.next_attempt_at <= before + timedelta(seconds=11)
    assert scheduled == [(delivery, row.next_attempt_at)]
    assert pipeline.process(delivery) is None  # not due yet


def test_the_retry_sees_the_journal_of_the_failed_attempt(
    services: Services, example_v1: dict[str, Any]
) -> None:
    adapter = ScriptedAdapter([RetryableError("timeout after create")])
    pipeline, _ = make_pipeline(services, adapter, retry_base_seconds=0.01)
    delivery = accept(services.ledger, example_v1)
    pipeline.process(delivery)
    with services.ledger.engine.begin() as conn:
        conn.execute(
            update(deliveries).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert pipeline.process(delivery).status == DONE  # type: ignore[union-attr]
    assert adapter.journals == [{}, {"record": f"rec-{example_v1['call']['id']}"}]


def test_retry_after_is_a_floor(services: Services, example_v1: dict[str, Any]) -> None:
    pipeline, _ = make_pipeline(services, ScriptedAdapter([RetryableError("429", retry_after=120)]))
    delivery = accept(services.ledger, example_v1)
    before = datetime.now(UTC)
    pipeline.process(delivery)
    assert state(services.ledger, delivery).next_attempt_at >= before + timedelta(seconds=120)


def test_permanent_error_is_dead_with_the_reason(
    services: Services, example_v1: dict[str, Any]
) -> None:
    pipeline, scheduled = make_pipeline(
        services, ScriptedAdapter([PermanentError("401: token revoked")])
    )
    delivery = accept(services.ledger, example_v1)
    assert pipeline.process(delivery).status == DEAD  # type: ignore[union-attr]
    row = state(services.ledger, delivery)
    assert (row.status, row.last_error) == (DEAD, "401: token revoked")
    assert scheduled == []
    # An operator fixes the token and replays.
    assert services.ledger.replay(dead=True) == [delivery]
    assert pipeline.process(delivery).status == DONE  # type: ignore[union-attr]


def test_unexpected_exceptions_are_retried_without_their_message(
    services: Services, example_v1: dict[str, Any]
) -> None:
    pipeline, _ = make_pipeline(services, ScriptedAdapter([KeyError("+4921163553400")]))
    delivery = accept(services.ledger, example_v1)
    assert pipeline.process(delivery).status == RETRYING  # type: ignore[union-attr]
    assert state(services.ledger, delivery).last_error == "Unexpected KeyError"


def test_parked_target_waits_without_using_attempts(
    services: Services, example_v1: dict[str, Any]
) -> None:
    tomorrow = datetime.now(UTC) + timedelta(hours=5)
    adapter = ScriptedAdapter([TargetParked("daily API limit reached", until=tomorrow)])
    pipeline, scheduled = make_pipeline(services, adapter)
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
    assert [d for d, _ in scheduled] == [first, second]


def test_gives_up_after_the_configured_age(services: Services, example_v1: dict[str, Any]) -> None:
    pipeline, _ = make_pipeline(
        services, ScriptedAdapter([RetryableError("still down")] * 2), give_up_after_hours=1
    )
    delivery = accept(services.ledger, example_v1)
    with services.ledger.engine.begin() as conn:
        conn.execute(update(deliveries).values(retry_since=datetime.now(UTC) - timedelta(hours=2)))
    assert pipeline.process(delivery).status == DEAD  # type: ignore[union-attr]
    assert state(services.ledger, delivery).last_error == "Gave up after 1 attempts: still down"
    # After the outage an operator replays it: the age counts from the replay.
    services.ledger.replay(dead=True)
    assert pipeline.process(delivery).status == RETRYING  # type: ignore[union-attr]


def test_a_delivery_whose_attempts_never_finish_ends_dead(
    services: Services, example_v1: dict[str, Any]
) -> None:
    pipeline, _ = make_pipeline(services, ScriptedAdapter(), give_up_after_hours=1)
    delivery = accept(services.ledger, example_v1)
    assert services.ledger.claim(delivery, timedelta(seconds=1)) is not None  # a worker crashes
    with services.ledger.engine.begin() as conn:
        conn.execute(
            update(deliveries).values(
                retry_since=datetime.now(UTC) - timedelta(hours=2),
                lease_until=datetime.now(UTC) - timedelta(seconds=1),
            )
        )
    outcome = pipeline.process(delivery)
    assert outcome is not None and outcome.status == DEAD
    assert "the previous attempt did not finish" in state(services.ledger, delivery).last_error


class SlowScripted(ScriptedAdapter):
    """Writes, then loses its lease to another worker before it can record the result."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__()
        self.ledger = ledger

    def write(self, job: Any, journal: Any) -> Any:
        with self.ledger.engine.begin() as conn:  # the lease expires; someone else claims
            conn.execute(update(deliveries).values(lease_token="another-worker"))
        journal.record("call", "crm-1")
        return super().write(job, journal)


def test_a_lost_lease_is_noticed_and_nothing_is_overwritten(
    services: Services, example_v1: dict[str, Any]
) -> None:
    pipeline, _ = make_pipeline(services, SlowScripted(services.ledger))
    pipeline.adapters = {"scripted": SlowScripted(services.ledger)}
    delivery = accept(services.ledger, example_v1)
    outcome = pipeline.process(delivery)
    assert outcome is not None and outcome.detail == "lease lost"
    row = state(services.ledger, delivery)
    assert row.status == PROCESSING and "call" not in row.refs  # left to the new holder


def test_journal_entries_renew_the_lease(services: Services, example_v1: dict[str, Any]) -> None:
    delivery = accept(services.ledger, example_v1)
    claim = services.ledger.claim(delivery, timedelta(seconds=5))
    assert claim is not None
    services.ledger.record_ref(claim, "call", "1", renew=timedelta(seconds=600))
    with services.ledger.engine.connect() as conn:
        lease = conn.execute(select(deliveries.c.lease_until)).scalar_one()
    assert lease > datetime.now(UTC) + timedelta(seconds=500)


def test_a_lease_excludes_other_workers_until_it_expires(
    services: Services, example_v1: dict[str, Any]
) -> None:
    delivery = accept(services.ledger, example_v1)
    claim = services.ledger.claim(delivery, timedelta(seconds=300))
    assert claim is not None and claim.attempts == 1
    assert services.ledger.claim(delivery, timedelta(seconds=300)) is None
    assert state(services.ledger, delivery).status == PROCESSING
    # The worker dies; its lease runs out; the sweeper finds it and another worker takes it.
    with services.ledger.engine.begin() as conn:
        conn.execute(
            update(deliveries).values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert services.ledger.take_due(timedelta(seconds=60)) == [delivery]
    second = services.ledger.claim(delivery, timedelta(seconds=300))
    assert second is not None and second.attempts == 2
    # The dead worker's late result cannot overwrite the new holder's.
    assert services.ledger.complete(claim, {"late": True}) is False
    assert services.ledger.complete(second, {"ok": True}) is True


def test_removed_target_is_dead(services: Services, example_v1: dict[str, Any]) -> None:
    pipeline, _ = make_pipeline(services, ScriptedAdapter())
    delivery = accept(services.ledger, example_v1, targets=("gone",))
    assert pipeline.process(delivery).status == DEAD  # type: ignore[union-attr]


def test_relay_sends_one_message_per_due_delivery_until_requeue_after(
    services: Services, example_v1: dict[str, Any]
) -> None:
    delivery = accept(services.ledger, example_v1)
    assert services.ledger.take_due(timedelta(seconds=60)) == [delivery]
    assert services.ledger.take_due(timedelta(seconds=60)) == []  # a message is on its way
    with services.ledger.engine.begin() as conn:  # ... and was lost: after requeue_after, again
        conn.execute(
            update(deliveries).values(queued_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert services.ledger.take_due(timedelta(seconds=60)) == [delivery]


def test_a_scheduled_retry_is_not_relayed_again_before_its_time(
    services: Services, example_v1: dict[str, Any]
) -> None:
    pipeline, scheduled = make_pipeline(services, ScriptedAdapter([RetryableError("down")]))
    delivery = accept(services.ledger, example_v1)
    services.ledger.take_due(timedelta(seconds=60))
    pipeline.process(delivery)
    assert scheduled  # the retry went to the queue with its eta ...
    with services.ledger.engine.begin() as conn:  # ... and when it is due,
        conn.execute(update(deliveries).values(next_attempt_at=datetime.now(UTC)))
    assert services.ledger.take_due(timedelta(seconds=60)) == []  # the relay does not duplicate it


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
    scheduled: list[tuple[int, datetime]] = []
    pipeline = DeliveryPipeline(
        services.ledger,
        {"scripted": adapter},
        QueueConfig(),
        schedule=lambda i, at: scheduled.append((i, at)),
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
