"""The commented starter configuration `sipgate-crm init` writes for the named targets."""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["TARGET_TYPES", "starter_config", "variables_named"]

_HEAD = """\
# sipgate-crm-connector configuration, written by `sipgate-crm init`.
# Secrets are ${NAME} references to environment variables (e.g. /etc/sipgate-crm/secrets.env,
# see deploy/sipgate-crm.env); `sipgate-crm check-config` names every one that is unset.
# The data folder (ledger, queue, metrics) is @DATA@; relative paths start at this file's
# folder. Every key is described in the JSON Schema of `sipgate-crm schema config` (editors show
# the descriptions on hover); the README's "Targets and adapters" shows each target type.

server:
  # Register https://YOUR-HOST/webhooks/sipgate/<secret> in sipgate
  # (Conversation Intelligence → CI Webhooks). At least 16 characters.
  webhook_path: /webhooks/sipgate
  secret: ${SIPGATE_WEBHOOK_SECRET}
  # sipgate's senders; webhooks from anywhere else are answered 403.
  allowed_ips: [217.116.118.254, 212.9.46.32]
  # Behind the nginx of deploy/nginx on this host: one proxy, on loopback.
  trusted_proxies: 1
  proxy_addresses: ["127.0.0.1", "::1"]
  bind: 127.0.0.1:8000
  # GET /metrics for Prometheus on a listener of its own (nginx never proxies it), with a
  # bearer token; bind answers /metrics with 404.
  metrics_bind: 127.0.0.1:9464
  metrics_token: ${SIPGATE_CRM_METRICS_TOKEN}
  metrics_directory: @DATA@/metrics

storage:
  # The ledger: every accepted call and its delivery state (PostgreSQL: postgresql+psycopg://…).
  url: sqlite:///@DATA@/connector.db

queue:
  url: sqlite:///@DATA@/queue.db

# How long the ledger keeps call content and call rows (unset: forever).
retention:
  content_days: 30
  metadata_days: 180

defaults:
  region: DE                 # numbers without a country code
  timezone: Europe/Berlin
  language: en               # en | de

targets:
"""

_TARGETS = {
    "database": """\
  # Every call in normalised tables, for BI tools (README: "The database target").
  - name: warehouse
    type: database
    url: sqlite:///@DATA@/calls.db
    store_transcript: true
    retention_days: 365
""",
    "hubspot": """\
  # Each call as a HubSpot call engagement on the matching contact (README: "The hubspot target").
  - name: hubspot
    type: hubspot
    access_token: ${HUBSPOT_TOKEN}        # private app token (scopes: README)
    # owners: {users: {"<sipgate user id>": "owner@example.com"}, fallback: "<owner id>"}
""",
    "salesforce": """\
  # Each call as a closed call Task on the matching contact or lead (README: "The salesforce
  # target").
  - name: salesforce
    type: salesforce
    instance_url: https://YOUR-DOMAIN.my.salesforce.com
    auth:                                  # OAuth client credentials of a connected app
      client_id: ${SF_CLIENT_ID}
      client_secret: ${SF_CLIENT_SECRET}
      domain: YOUR-DOMAIN.my
""",
    "vcon": """\
  # Every call as a vCon file, an archive in an open standard (README: "The vcon target").
  - name: archive
    type: vcon
    folder: @DATA@/vcons
    retention_days: 365
""",
    "webhook": """\
  # Each call as signed JSON to n8n, Zapier, Make or a service of yours (README: "The webhook
  # target"); the receiver verifies it with the secret and dedupes on webhook-id.
  - name: forwarder
    type: webhook
    url: https://YOUR-RECEIVER/webhooks/sipgate-calls
    secret: ${WEBHOOK_SIGNING_SECRET}      # whsec_ + base64 of 32 random bytes (README)
    include_transcript: false
""",
    "zendesk": """\
  # Each incoming support call as a Zendesk ticket with an internal note (README: "The zendesk
  # target").
  - name: support
    type: zendesk
    subdomain: your-subdomain                # https://your-subdomain.zendesk.com
    email: agent@example.com                 # the agent whose API token this is
    api_token: ${ZENDESK_TOKEN}
    filters: {directions: [IN]}
""",
}
TARGET_TYPES = tuple(_TARGETS)
_VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")


def starter_config(targets: Sequence[str], data: str = "data") -> str:
    """The configuration text for `targets` (types from `TARGET_TYPES`, each once, in order),
    keeping ledger, queue, metrics and SQLite targets in the folder `data`."""
    unknown = [t for t in targets if t not in _TARGETS]
    if unknown or not targets:
        raise ValueError(f"targets must be some of {', '.join(TARGET_TYPES)}, not {unknown}")
    text = _HEAD + "".join(_TARGETS[t] for t in dict.fromkeys(targets))
    return text.replace("@DATA@", data.rstrip("/") or "/")


def variables_named(text: str) -> list[str]:
    """The ``${NAME}`` environment variables `text` refers to outside comments, each once."""
    values = "\n".join(line.partition("#")[0] for line in text.splitlines())
    return list(dict.fromkeys(_VARIABLE.findall(values)))
