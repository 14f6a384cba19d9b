"""HubSpot benchmark: requests per logged call; how close the rate limiter drains to the minimum.

Both parts drive the real ``HubSpotAdapter`` (official SDK, real HTTP on loopback) against the
stateful ``HubSpotTestServer`` from ``tests/fakes``.

1. **Requests per logged call.** N matched calls, each with two action items, from a small set of
   customers (so some callers repeat): search (``search_by_phone``) + call + task batch. Printed
   with the number cache on (repeat callers cost no search) and off (every call searched).

2. **Drain time.** 1,000 queued calls (same shape) delivered by one worker through a limiter with
   a budget of 100 requests per 10 s, against a server enforcing exactly 100 per 10 s. The
   theoretical minimum is the moment the last request may go: request k (counted from 0)
   cannot be sent before 10 s * (k // 100). Searches have their own budget (4 per second) and
   are cached for repeat callers, so they hardly count. Printed: the ratio measured / minimum
   and the server's count of requests it rejected for being over budget (must be 0). With
   ``--compare-default`` the run is repeated with the default budget of 90 per 10 s (ratio
   about 100/90 by design: the headroom left for the account's other integrations).

   *Scaling*: real time would need 200 s per run. Instead server and limiter share a
   ``ManualClock``: time moves only when the limiter waits (its ``sleep`` advances the clock by
   the wait), and the server's rolling window and search budget read the same clock. Budgets and
   windows stay at their real values, so the measured drain time is exactly the time the
   limiter's pacing would take; HTTP round trips take no manual time, so the ratio shows the
   limiter's overhead alone (on real networks, latency adds to it when one worker is used).
   One drain takes about 15 s of wall time (2,000+ real HTTP requests).

Run from the repository root: ``python -m bench.hubspot_requests [--calls 50] [--drain 1000]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # also runnable as ``python bench/hubspot_requests.py``
    sys.path.insert(0, str(ROOT))

from connector.adapters import DeliveryJob, Journal, TaskSpec  # noqa: E402
from connector.adapters.hubspot import HubSpotAdapter  # noqa: E402
from connector.adapters.kit.ratelimit import Budget, MemorySlotStore, RateLimiter  # noqa: E402
from connector.phone import PhoneNumber, parse_sipgate  # noqa: E402
from connector.testing.contract import example_report  # noqa: E402
from tests.fakes.base import ManualClock  # noqa: E402
from tests.fakes.hubspot_server import DEFAULT_TOKEN, HubSpotTestServer  # noqa: E402

CUSTOMERS = 20
ACTION_ITEMS = (
    TaskSpec("Send the plan options", "Plus and Pro, by Friday", date(2026, 4, 10), "high"),
    TaskSpec("Check the invoice", "March invoice, line 3", date(2026, 4, 11)),
)


def seed(server: HubSpotTestServer) -> list[PhoneNumber]:
    """Fictional customers (030 23125xxx is reserved for fiction) on distinct numbers."""
    server.add_property("calls", "hs_call_external_id")
    numbers = []
    for n in range(CUSTOMERS):
        number = parse_sipgate(f"49302312{5100 + n}")
        assert number is not None
        server.add_contact({"firstname": f"Kunde {n}", "phone": number.national()})
        numbers.append(number)
    return numbers


def deliver(adapter: HubSpotAdapter, number: PhoneNumber, call_id: str) -> None:
    """What the pipeline does for one matched call: search, then write."""
    matches = tuple(adapter.search_by_phone(number, ["contact"]))
    report = replace(example_report(call_id), from_number=number.digits())
    adapter.write(DeliveryJob(report, matches=matches, tasks=ACTION_ITEMS), Journal())


def requests_per_call(calls: int, cache_seconds: float) -> float:
    with HubSpotTestServer(ten_second_limit=10**6, search_per_second_limit=10**6) as server:
        numbers = seed(server)
        adapter = HubSpotAdapter(
            "bench",
            HubSpotAdapter.config_schema().load(
                {
                    "access_token": DEFAULT_TOKEN,
                    "base_url": server.url,
                    "cache_seconds": cache_seconds,
                    "rate_limit": {"requests_per_10s": 10**6, "searches_per_second": 10**6},
                }
            ),
        )
        server.clear_request_log()
        for i in range(calls):
            deliver(adapter, numbers[i % len(numbers)], f"bench-{i}")
        adapter.close()
        return len(server.request_log) / calls


def drain(calls: int, budget: int) -> tuple[float, float, int, float]:
    """(manual seconds to drain, theoretical minimum, over-budget rejections, wall seconds)."""
    clock = ManualClock(start=0.0)
    with HubSpotTestServer(ten_second_limit=100, search_per_second_limit=5, clock=clock) as server:
        numbers = seed(server)
        limiter = RateLimiter(
            {"general": Budget(budget, 10.0), "search": Budget(4, 1.0)},
            MemorySlotStore(clock),
            namespace="bench",
            max_wait=3600.0,
            clock=clock,
            sleep=clock.advance,
        )
        adapter = HubSpotAdapter(
            "bench",
            HubSpotAdapter.config_schema().load(
                {"access_token": DEFAULT_TOKEN, "base_url": server.url}
            ),
            limiter=limiter,
        )
        server.clear_request_log()
        started_wall, started = time.perf_counter(), clock()
        for i in range(calls):
            deliver(adapter, numbers[i % len(numbers)], f"drain-{i}")
        elapsed = clock() - started
        wall = time.perf_counter() - started_wall
        general = sum(1 for r in server.request_log if r.budget == "general")
        rejected = len(server.rate_limited_requests())
        adapter.close()
    # In any 10 s at most 100 requests: request k (from 0) cannot go before 10 * (k // 100) s.
    minimum = 10.0 * ((general - 1) // 100)
    return elapsed, minimum, rejected, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50, help="matched calls for part 1")
    parser.add_argument("--drain", type=int, default=1000, help="queued calls for part 2")
    parser.add_argument(
        "--compare-default", action="store_true", help="also drain with the default budget 90"
    )
    args = parser.parse_args()

    cached = requests_per_call(args.calls, cache_seconds=300)
    cold = requests_per_call(args.calls, cache_seconds=0)
    print(f"HubSpot requests per logged call ({args.calls} matched calls, 2 action items each)")
    print(f"  number cache on  ({CUSTOMERS} repeat callers): {cached:.2f}")
    print(f"  number cache off (search every call):        {cold:.2f}   (target: <= 3)")
    print()
    print(f"Drain of {args.drain} queued calls, server limit 100 requests / 10 s (manual clock)")
    for budget in (100, 90) if args.compare_default else (100,):
        elapsed, minimum, rejected, wall = drain(args.drain, budget)
        ratio = elapsed / minimum if minimum else float("nan")
        print(
            f"  budget {budget:>3} / 10 s: {elapsed:7.1f} s vs minimum {minimum:7.1f} s "
            f"-> ratio {ratio:.3f}; over-budget 429s: {rejected}; wall time {wall:.1f} s"
        )


if __name__ == "__main__":
    main()
