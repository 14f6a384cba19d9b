"""Record links of the console: Zendesk tickets and users open in the agent workspace."""

from __future__ import annotations

from connector.adapters.zendesk import ZendeskOptions
from connector.config.sections import (
    Config,
    QueueConfig,
    ServerConfig,
    StorageConfig,
    TargetConfig,
)
from connector.web.console.links import RecordLink, record_links


def config_with(target: TargetConfig) -> Config:
    return Config(ServerConfig(), StorageConfig(), QueueConfig(), (target,))


REFS = {
    "match": {"status": "matched", "records": [{"type": "contact", "id": "9100000002"}]},
    "ticket": "4711",
    "requester": "9100000002",
}


def test_zendesk_links_use_the_subdomain() -> None:
    target = TargetConfig("support", "zendesk", {"subdomain": "acme", "email": "a@example.com"})
    assert record_links(config_with(target), "support", REFS) == [
        RecordLink("contact", "9100000002", "https://acme.zendesk.com/agent/users/9100000002"),
        RecordLink("ticket", "4711", "https://acme.zendesk.com/agent/tickets/4711"),
    ]


def test_zendesk_links_use_the_url_when_it_is_given() -> None:
    options = ZendeskOptions(email="a@example.com", api_token="t", url="http://127.0.0.1:9/")
    target = TargetConfig("support", "zendesk", options)
    links = record_links(config_with(target), "support", {"ticket": "12"})
    assert links == [RecordLink("ticket", "12", "http://127.0.0.1:9/agent/tickets/12")]
