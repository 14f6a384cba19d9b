"""Zendesk API requests per ticket, counted on the local Zendesk test server.

Zendesk limits requests per minute per account (200 to 2,500 by plan), so requests per call is the
figure that matters. Each scenario logs ``--calls`` calls the way the pipeline does (search →
match → write, a new end user for an unknown caller) and counts the requests the server saw.

Run: ``python -m bench.zendesk_requests`` (or ``--calls 50``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from connector.adapters import DeliveryJob, Journal  # noqa: E402
from connector.adapters.zendesk import ZendeskAdapter  # noqa: E402
from connector.phone import PhoneNumber, parse_sipgate  # noqa: E402
from connector.testing.contract import example_report  # noqa: E402
from tests.fakes.zendesk_server import AGENT_EMAIL, API_TOKEN, ZendeskTestServer  # noqa: E402


@dataclass(frozen=True)
class Scenario:
    """One kind of call: how the caller's number is stored in Zendesk (None: not at all)."""

    name: str
    stored: Callable[[int], str] | None


def caller(index: int) -> PhoneNumber:
    parsed = parse_sipgate(f"49301234{index:04d}")
    assert parsed is not None
    return parsed


SCENARIOS = (
    Scenario("requester stored as +E.164", lambda i: caller(i).e164),
    Scenario("requester stored nationally (030 …)", lambda i: caller(i).national()),
    Scenario("requester stored without trunk prefix", lambda i: caller(i).national_significant),
    Scenario("unknown caller: new end user", None),
)


def log_call(adapter: ZendeskAdapter, index: int) -> None:
    number = caller(index)
    found = adapter.search_by_phone(number, ("contact",))
    if not found:
        found = [adapter.create_record("contact", number, {}, Journal())]
    job = DeliveryJob(example_report(f"bench-{index}"), matches=tuple(found[:1]), remote=number)
    adapter.write(job, Journal())


def run(scenario: Scenario, calls: int) -> float:
    """Mean requests per call of `scenario`."""
    with ZendeskTestServer() as server:
        for index in range(calls):
            if scenario.stored is not None:
                server.add_user(f"Caller {index}", phone=scenario.stored(index))
        options = ZendeskAdapter.config_schema().load(
            {"email": AGENT_EMAIL, "api_token": API_TOKEN, "url": server.url}
        )
        adapter = ZendeskAdapter("bench", options)
        try:
            for index in range(calls):
                log_call(adapter, index)
            assert len(server.tickets()) == calls
            return len(server.request_log) / calls
        finally:
            adapter.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="calls per scenario")
    args = parser.parse_args()
    print(f"Zendesk API requests per ticket ({args.calls} calls per scenario)")
    print(f"{'scenario':<42} {'per call':>9}")
    for scenario in SCENARIOS:
        print(f"{scenario.name:<42} {run(scenario, args.calls):>9.2f}")
    print(
        "Each call: the phone searches until one finds the caller, the ticket lookup by "
        "external id, the ticket; a new caller adds the user's create_or_update."
    )


if __name__ == "__main__":
    main()
