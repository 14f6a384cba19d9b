"""Counting delivery attempts: every outcome the pipeline can report has a name."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from connector.delivery.observed import observed
from connector.delivery.pipeline import Outcome
from connector.ledger.tables import DEAD, DONE, RETRYING, REVIEW, SKIPPED
from connector.services import Services


def attempts(outcome: str) -> float:
    found = REGISTRY.get_sample_value(
        "sipgate_crm_deliveries_total", {"target": "warehouse", "outcome": outcome}
    )
    return found or 0.0


@pytest.mark.parametrize(
    ("status", "name"),
    [(DONE, "done"), (SKIPPED, "skipped"), (RETRYING, "retry"), (DEAD, "dead"), (REVIEW, "review")],
)
def test_each_outcome_is_counted_under_its_name(
    services: Services, example_v1: dict[str, Any], status: str, name: str
) -> None:
    from connector.payload import parse_report

    services.ledger.store_call(parse_report(example_v1), b"{}", ["warehouse"])

    def process(delivery_id: int) -> Outcome:
        return Outcome(delivery_id, status)

    before = attempts(name)
    assert observed(services.ledger, process)(1) == Outcome(1, status)
    assert attempts(name) == before + 1
