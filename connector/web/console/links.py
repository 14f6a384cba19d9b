"""Links that open the records a delivery wrote (or matched) in the target's CRM.

HubSpot: ``https://<domain>/contacts/<portal id>/record/<object type id>/<id>`` with the portal id
from ``console.links.<target>.portal_id`` (``domain`` defaults to ``app.hubspot.com``; EU portals
use ``app-eu1.hubspot.com``). Salesforce: ``<instance>/lightning/r/<Object>/<Id>/view`` on the
target's ``instance_url`` (or ``console.links.<target>.instance_url``). Zendesk:
``https://<subdomain>.zendesk.com/agent/tickets/<id>`` (users: ``/agent/users/<id>``), on the
target's ``url`` when it names one instead. Other targets: no links.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connector.config.sections import Config

__all__ = ["RecordLink", "record_links"]

_HUBSPOT_TYPES = {
    "contact": "0-1",
    "company": "0-2",
    "deal": "0-3",
    "ticket": "0-5",
    "task": "0-27",
    "note": "0-46",
    "call": "0-48",
}
_ZENDESK_PATHS = {"ticket": "tickets", "contact": "users"}
_SALESFORCE_TYPES = {
    "contact": "Contact",
    "lead": "Lead",
    "account": "Account",
    "task": "Task",
    "case": "Case",
}


@dataclass(frozen=True)
class RecordLink:
    """One CRM record: what it is, its id, and the URL that opens it."""

    kind: str
    id: str
    url: str


def _written(refs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(kind, id) of every record in a delivery's refs: the match's records and what was written."""
    found: list[tuple[str, str]] = []
    match = refs.get("match")
    if isinstance(match, Mapping):
        for record in match.get("records") or []:
            if record.get("id") and record.get("id") != "(new)":
                found.append((str(record.get("type")), str(record["id"])))
    for kind in ("call", "task", "note", "ticket", "case"):
        value = refs.get(kind)
        if isinstance(value, str | int) and value:
            found.append((kind, str(value)))
    tasks = refs.get("tasks") or refs.get("follow_ups") or []
    if isinstance(tasks, list):
        found.extend(("task", str(t)) for t in tasks if t)
    return list(dict.fromkeys(found))


def record_links(config: Config, target: str, refs: Mapping[str, Any]) -> list[RecordLink]:
    """Links to the CRM records of one delivery (empty when the target's CRM has no web UI)."""
    try:
        target_config = config.target(target)
    except KeyError:
        return []
    extra = config.console.links.get(target, {})
    links: list[RecordLink] = []
    if target_config.type == "hubspot" and extra.get("portal_id"):
        domain = extra.get("domain", "app.hubspot.com")
        for kind, record_id in _written(refs):
            if kind in _HUBSPOT_TYPES:
                url = (
                    f"https://{domain}/contacts/{extra['portal_id']}/record/"
                    f"{_HUBSPOT_TYPES[kind]}/{record_id}"
                )
                links.append(RecordLink(kind, record_id, url))
    elif target_config.type == "salesforce":
        instance = str(extra.get("instance_url") or target_config.options.get("instance_url", ""))
        if instance:
            for kind, record_id in _written(refs):
                if kind in _SALESFORCE_TYPES:
                    path = f"/lightning/r/{_SALESFORCE_TYPES[kind]}/{record_id}/view"
                    url = instance.rstrip("/") + path
                    links.append(RecordLink(kind, record_id, url))
    elif target_config.type == "zendesk":
        base = _zendesk_base(target_config.options)
        for kind, record_id in _written(refs):
            if base and kind in _ZENDESK_PATHS:
                url = f"{base}/agent/{_ZENDESK_PATHS[kind]}/{record_id}"
                links.append(RecordLink(kind, record_id, url))
    return links


def _zendesk_base(options: Any) -> str:
    """``https://<subdomain>.zendesk.com``, or the target's ``url``; "" when neither is set."""
    if isinstance(options, Mapping):
        url, subdomain = options.get("url"), options.get("subdomain")
    else:
        url, subdomain = getattr(options, "url", None), getattr(options, "subdomain", None)
    if url:
        return str(url).rstrip("/")
    return f"https://{subdomain}.zendesk.com" if subdomain else ""
