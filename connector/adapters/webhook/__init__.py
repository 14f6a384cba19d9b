"""The ``webhook`` target: each call POSTed as signed, normalised JSON to a receiver of one's own.

For n8n, Zapier, Make, an internal service or a reporting tool. The body is the connector's
normalised call, version 1 (`connector.adapters.webhook.payload`, JSON Schema in
``call.v1.schema.json``), with the target's mapping rendered under ``fields``; it is signed per
Standard Webhooks with the `standardwebhooks` library (extra ``webhook``). The pipeline's
filters, retries and dead letters apply as for every target; ``webhook-id`` stays the same on
every attempt and replay of a delivery, so the receiver dedupes on it.
"""

from __future__ import annotations

from connector.adapters.webhook.adapter import WebhookAdapter
from connector.adapters.webhook.options import WebhookOptions
from connector.adapters.webhook.payload import SCHEMA_ID, call_document, delivery_id, json_schema

__all__ = [
    "SCHEMA_ID",
    "WebhookAdapter",
    "WebhookOptions",
    "call_document",
    "delivery_id",
    "json_schema",
]
