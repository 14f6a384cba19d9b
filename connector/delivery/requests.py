"""The worker's side of console requests: run a target's check or a CRM search, store the result.

`RequestRunner` polls the ledger's ``console_requests`` (see `connector.ledger.requests`) and
answers each with the target's adapter, so the web side never talks to a CRM. Search results are
the candidates as the matching step sees them (re-checked against the number; a search by
``name`` is not re-checked: the person reads the names), in the form a delivery's journal keeps
a match, so "log on this record" can hand one straight to the pipeline.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from connector.adapters import Adapter, AdapterError, CrmRecord
from connector.config.policy import DeliveryPolicy
from connector.delivery.matching import recheck
from connector.ledger.requests import CHECK, SEARCH, ConsoleRequest, Requests
from connector.phone import parse_stored

__all__ = ["RequestRunner", "candidate", "run_request"]

log = logging.getLogger(__name__)


def candidate(record: CrmRecord, matched: str | None = None) -> dict[str, Any]:
    """A record as the review queue shows it and a journaled match keeps it."""
    return {
        "type": record.object_type,
        "id": record.id,
        "name": record.name,
        "owner_id": record.owner_id,
        "parent_id": record.parent_id,
        "modified_at": record.modified_at.isoformat() if record.modified_at else None,
        "phones": list(record.phones),
        "matched_number": matched,
        "extra": dict(record.extra),
    }


def run_request(
    request: ConsoleRequest, adapter: Adapter, policy: DeliveryPolicy
) -> tuple[bool, dict[str, Any]]:
    """Execute one request; ``(ok, result)``. Adapter errors become a failed result."""
    try:
        if request.kind == CHECK:
            results = adapter.check()
            return all(r.ok for r in results), {
                "results": [{"ok": r.ok, "message": r.message} for r in results]
            }
        if request.kind == SEARCH:
            objects = policy.matching.objects or adapter.searchable_objects
            if "name" in request.params:
                if not adapter.supports_name_search:
                    return False, {"error": "This target cannot search by name."}
                found = adapter.search_by_name(str(request.params["name"]), objects)
                return True, {"candidates": [candidate(r) for r in found]}
            region = policy.defaults.region
            number = parse_stored(str(request.params.get("number", "")), region)
            if number is None:
                return False, {"error": "Not a phone number."}
            hits = recheck(adapter.search_by_phone(number, objects), number, region)
            return True, {"candidates": [candidate(h, number.e164) for h in hits]}
    except (AdapterError, NotImplementedError) as exc:
        return False, {"error": str(exc)}
    return False, {"error": f"Unknown request {request.kind!r}."}


class RequestRunner(threading.Thread):
    """Answers console requests every `interval` seconds until stopped."""

    def __init__(
        self,
        requests: Requests,
        adapters: Mapping[str, Adapter],
        policies: Mapping[str, DeliveryPolicy],
        interval: float,
    ) -> None:
        super().__init__(name="console-requests", daemon=True)
        self.requests = requests
        self.adapters = adapters
        self.policies = policies
        self.interval = interval
        self.stopped = threading.Event()

    def run_once(self) -> int:
        """Answer the waiting requests; how many."""
        taken = self.requests.take()
        for request in taken:
            adapter = self.adapters.get(request.target)
            if adapter is None:
                self.requests.finish(request.id, False, {"error": "No such target."})
                continue
            try:
                ok, result = run_request(
                    request, adapter, self.policies.get(request.target) or DeliveryPolicy()
                )
            except Exception as exc:  # a bug: answer it instead of leaving the page waiting
                log.error("console request %d failed: %s", request.id, type(exc).__name__)
                ok, result = False, {"error": f"Unexpected {type(exc).__name__}"}
            self.requests.finish(request.id, ok, result)
        return len(taken)

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.run_once()
            except Exception:
                log.warning("console requests pass failed; trying again", exc_info=True)
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        """Stop after the current pass."""
        self.stopped.set()
