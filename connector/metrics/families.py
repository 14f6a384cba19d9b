"""The counters and histograms the processes update; labels never hold a number or a call id.

Web processes count webhooks; the worker counts deliveries and, through the adapter kit
(`connector.adapters.kit.observe`), every request a target sends to its CRM and every wait for
a slot of a CRM's request budget (also in ``sipgate-crm check`` and ``dry-run``, which report
nothing). In multiprocess mode (``sipgate-crm
web`` and ``worker`` set it up, see `connector.metrics.exposition`) each process writes its values
to files that ``/metrics`` adds up.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = [
    "CRM_REQUESTS",
    "CRM_REQUEST_SECONDS",
    "DELIVERIES",
    "DELIVERY_SECONDS",
    "RATE_LIMIT_WAITS",
    "RATE_LIMIT_WAIT_SECONDS",
    "WEBHOOKS",
]

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

CRM_REQUESTS = Counter(
    "sipgate_crm_crm_requests",
    "HTTP requests sent to a CRM, by target and status (the HTTP status code, timeout or "
    "connection_error).",
    ["target", "status"],
)

CRM_REQUEST_SECONDS = Histogram(
    "sipgate_crm_crm_request_duration_seconds",
    "How long one request to a CRM took until its answer (or failure), by target.",
    ["target"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

RATE_LIMIT_WAITS = Counter(
    "sipgate_crm_rate_limit_waits",
    "Requests that waited for a slot of the target's client-side request budget.",
    ["target"],
)

RATE_LIMIT_WAIT_SECONDS = Counter(
    "sipgate_crm_rate_limit_wait_seconds",
    "Time spent waiting for slots of the target's client-side request budget.",
    ["target"],
)
