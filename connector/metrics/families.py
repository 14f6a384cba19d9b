"""The counters and histograms the processes update; labels never hold a number or a call id.

Web processes count webhooks; the worker counts deliveries. In multiprocess mode (``sipgate-crm
web`` and ``worker`` set it up, see `connector.metrics.exposition`) each process writes its values
to files that ``/metrics`` adds up.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["DELIVERIES", "DELIVERY_SECONDS", "WEBHOOKS"]

WEBHOOKS = Counter(
    "sipgate_crm_webhooks",
    "Webhooks received, by outcome (accepted, duplicate, rejected) and the rejection's reason.",
    ["outcome", "reason"],
)

DELIVERIES = Counter(
    "sipgate_crm_deliveries",
    "Delivery attempts by target and outcome (done, skipped, retry, parked, dead, review, "
    "lease_lost).",
    ["target", "outcome"],
)

DELIVERY_SECONDS = Histogram(
    "sipgate_crm_delivery_duration_seconds",
    "How long one delivery attempt took, by target.",
    ["target"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
