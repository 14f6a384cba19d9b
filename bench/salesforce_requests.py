"""Salesforce API requests per logged call, counted on the local HTTPS Salesforce test server.

Salesforce orgs share one rolling 24-hour API request allocation among all integrations, so the
number of requests per call is the figure that matters (not latency on loopback). For each
scenario the adapter logs one warm-up call and then ``--calls`` calls the way the pipeline does
(search → match → write); the server's request log counts data API requests
(``/services/data/...``; OAuth token requests are not API calls and are listed apart).

Run: ``python bench/salesforce_requests.py`` (or ``--calls 50``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from connector.adapters import DeliveryJob, Journal, TaskSpec  # noqa: E402
from connector.adapters.salesforce import SalesforceAdapter  # noqa: E402
from connector.phone import PhoneNumber, parse_sipgate  # noqa: E402
from connector.testing.contract import example_report  # noqa: E402
from tests.fakes.salesforce_server import SalesforceTestServer  # noqa: E402

KNOWN = "4921163553400"
ACTION_ITEMS = (
    TaskSpec("Send plan options", "Send the options by e-mail.", date(2026, 4, 10), "high"),
    TaskSpec("Confirm the plan change", "", date(2026, 4, 14), "normal"),
)


@dataclass(frozen=True)
class Scenario:
    """One kind of call: adapter options, how the server is seeded and how a call is logged."""

    name: str
    options: dict[str, Any]
    log_call: Callable[[SalesforceAdapter, str, int], None]


def number(digits: str) -> PhoneNumber:
    parsed = parse_sipgate(digits)
    assert parsed is not None
    return parsed


def matched(overflow: str = "", tasks: tuple[TaskSpec, ...] = ACTION_ITEMS) -> Callable[..., None]:
    def log_call(adapter: SalesforceAdapter, call_id: str, _: int) -> None:
        caller = number(KNOWN)
        found = adapter.search_by_phone(caller, [])
        job = DeliveryJob(
            example_report(call_id),
            matches=tuple(found[:1]),
            tasks=tasks,
            overflow=overflow,
            remote=caller,
        )
        adapter.write(job, Journal())

    return log_call


def new_caller(adapter: SalesforceAdapter, call_id: str, index: int) -> None:
    caller = number(f"49301234{index:04d}")
    found = adapter.search_by_phone(caller, [])
    if not found:
        found = [adapter.create_record("lead", caller, {}, Journal())]
    adapter.write(DeliveryJob(example_report(call_id), matches=tuple(found)), Journal())


SCENARIOS = (
    Scenario("matched call, 2 action items", {}, matched()),
    Scenario("matched call, no action items", {}, matched(tasks=())),
    Scenario("matched call, 2 action items, overflow note", {}, matched(overflow="Rest " * 9000)),
    Scenario(
        "matched call, 2 action items, what_rule open_opportunity",
        {"what_rule": "open_opportunity"},
        matched(),
    ),
    Scenario(
        "matched call, 2 action items, match_field (contact only)",
        {"match_field": "Phone_E164__c", "search_objects": ["contact"]},
        matched(),
    ),
    Scenario("new caller: search, create lead, write", {}, new_caller),
)


def run(scenario: Scenario, calls: int) -> tuple[int, float, int]:
    """(requests of the first call, mean requests of the next calls, token requests)."""
    with SalesforceTestServer(search_lag_seconds=900) as server:
        server.add_field("Contact", "Phone_E164__c", "string", 40)
        account = server.add_account()
        server.add_contact(
            LastName="Beispiel", Phone="0211 63553400", AccountId=account, Phone_E164__c="+" + KNOWN
        )
        server.add_opportunity(AccountId=account)
        options = SalesforceAdapter.config_schema().load(
            {
                "instance_url": server.instance_url,
                "auth": {
                    "client_id": server.consumer_key,
                    "client_secret": server.consumer_secret,
                    "token_url": f"{server.instance_url}/services/oauth2/token",
                },
                **scenario.options,
            }
        )
        adapter = SalesforceAdapter("bench", options, session=server.client_session())
        try:
            scenario.log_call(adapter, "bench-0", 0)
            first = len(server.requests(kind="api"))
            tokens = len(server.requests(kind="auth"))
            server.clear_request_log()
            for index in range(1, calls + 1):
                scenario.log_call(adapter, f"bench-{index}", index)
            later = len(server.requests(kind="api")) / calls
            return first, later, tokens + len(server.requests(kind="auth"))
        finally:
            adapter.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="calls per scenario after warm-up")
    args = parser.parse_args()
    print(f"Salesforce API requests per logged call ({args.calls} calls per scenario)")
    print(f"{'scenario':<58} {'1st call':>8} {'per call':>9} {'logins':>6}")
    for scenario in SCENARIOS:
        first, later, tokens = run(scenario, args.calls)
        print(f"{scenario.name:<58} {first:>8} {later:>9.2f} {tokens:>6}")
    print(
        "The first call of an adapter instance also reads the org's TaskStatus and TaskPriority "
        "values (2 queries, cached afterwards; TaskPriority only once a call has action items). "
        "OAuth token requests are not API calls: one per adapter instance and session expiry."
    )


if __name__ == "__main__":
    main()
