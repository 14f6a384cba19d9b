"""Reading this process's CRM request counters in tests (no multiprocess mode in unit tests)."""

from __future__ import annotations

from collections import Counter

from prometheus_client import REGISTRY


def crm_requests(target: str) -> Counter[str]:
    """``sipgate_crm_crm_requests_total`` of `target` so far, by status."""
    counts: Counter[str] = Counter()
    for family in REGISTRY.collect():
        if family.name != "sipgate_crm_crm_requests":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels.get("target") == target:
                counts[sample.labels["status"]] += int(sample.value)
    return counts


def logged_statuses(statuses: list[int]) -> Counter[str]:
    """What a fake's request log says was answered, in the counter's terms."""
    return Counter(str(status) for status in statuses)
