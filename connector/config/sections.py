"""The configuration's sections as typed, frozen values (no loading, no adapter import).

Adapters and the delivery side read these; `connector.config.load` builds them from YAML.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector.config.policy import Defaults, DeliveryPolicy

__all__ = [
    "ROLES",
    "AlertChannel",
    "AlertsConfig",
    "Config",
    "ConsoleConfig",
    "ConsoleUser",
    "IPNetwork",
    "QueueConfig",
    "RetentionConfig",
    "ServerConfig",
    "StorageConfig",
    "TargetConfig",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ServerConfig:
    """How the web side listens and whom it accepts webhooks from."""

    webhook_path: str = "/webhooks/sipgate"
    secret: str | None = None
    allowed_ips: tuple[IPNetwork, ...] = ()
    trusted_proxies: int = 0
    #: Forwarded headers count only on connections from these (with ``trusted_proxies`` ≥ 1).
    proxy_addresses: tuple[IPNetwork, ...] = (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )
    max_body_bytes: int = 5 * 1024 * 1024
    #: A body still arriving after this long is answered 408 (a slow client holds no worker).
    body_timeout_seconds: float = 10.0
    bind: str = "127.0.0.1:8000"
    workers: int = 4
    threads: int = 4
    timeout_seconds: int = 30
    metrics_token: str | None = None
    #: ``HOST:PORT`` of a second listener that serves only ``/metrics`` (``bind`` then does not).
    metrics_bind: str | None = None
    metrics_directory: Path = Path("data/metrics")
    #: Public keys (JWK objects or PEM strings) whose signatures make a signed vCon acceptable.
    vcon_keys: tuple[Any, ...] = ()
    #: Refuse unsigned vCons (needs `vcon_keys`).
    vcon_require_signature: bool = False

    @property
    def metrics_port(self) -> str | None:
        """The port of `metrics_bind` (``None`` without one)."""
        return self.metrics_bind.rpartition(":")[2] if self.metrics_bind else None


@dataclass(frozen=True)
class StorageConfig:
    """Where the ledger lives (the truth about every call and delivery)."""

    url: str = "sqlite:///data/connector.db"


@dataclass(frozen=True)
class QueueConfig:
    """The delivery queue and its retry policy."""

    url: str = "sqlite:///data/queue.db"
    workers: int = 2
    lease_seconds: int = 15
    poll_interval_seconds: float = 1.0
    requeue_after_seconds: int = 300
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    give_up_after_hours: float = 72.0


#: Console roles: a viewer sees calls and states; an operator also sees transcripts and acts.
ROLES = ("viewer", "operator")


@dataclass(frozen=True)
class ConsoleUser:
    """A sales-ops console account: its login name, Werkzeug password hash and role."""

    name: str
    password_hash: str
    role: str = "viewer"


@dataclass(frozen=True)
class ConsoleConfig:
    """The sales-ops console under ``/console/`` (off unless enabled with a key and users).

    `links` per target: ``portal_id`` (HubSpot) for record links; Salesforce targets link to
    their ``instance_url``.
    """

    enabled: bool = False
    secret_key: str = ""
    users: tuple[ConsoleUser, ...] = ()
    session_hours: float = 12.0
    login_attempts: int = 5
    login_window_minutes: int = 15
    links: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def user(self, name: str) -> ConsoleUser | None:
        """The account called `name`, or ``None``."""
        return next((u for u in self.users if u.name == name), None)


@dataclass(frozen=True)
class RetentionConfig:
    """How long the ledger keeps what it stored about a call (``None``: forever).

    After `content_days` a call's content (its raw body: transcript, summary, key points, action
    items, headline) is removed once no delivery still needs it; after `metadata_days` the whole
    call row goes, delivery states included. The worker checks every `interval_seconds`.
    """

    content_days: int | None = None
    metadata_days: int | None = None
    interval_seconds: int = 3600


@dataclass(frozen=True)
class AlertChannel:
    """One place alerts go: a ``slack``, ``teams`` or ``http`` webhook `url`, or ``email``.

    E-mail goes to `recipients` from `sender` over SMTP at `host`:`port` with STARTTLS (always),
    logging in when `username` is set; `ca_file` replaces the system's trusted certificates.
    """

    type: str
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    host: str | None = None
    port: int = 587
    username: str | None = None
    password: str | None = None
    sender: str | None = None
    recipients: tuple[str, ...] = ()
    ca_file: Path | None = None
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class AlertsConfig:
    """When the worker tells people: dead deliveries, parked targets, a long review queue.

    Every `interval_seconds` the worker looks for what it has not reported yet and sends one
    message per channel, at most one every `min_interval_seconds`; the review queue is reported
    when it holds more than `review_queue_above` deliveries (``None``: never).
    """

    channels: tuple[AlertChannel, ...] = ()
    review_queue_above: int | None = None
    interval_seconds: int = 60
    min_interval_seconds: int = 300


@dataclass(frozen=True)
class TargetConfig:
    """One delivery target: its unique name, adapter type and the options its adapter validated."""

    name: str
    type: str
    options: Any = field(default_factory=dict)
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    #: Whether its adapter declares `Adapter.supports_name_search` (the console offers it).
    searches_by_name: bool = False


@dataclass(frozen=True)
class Config:
    """The whole, validated configuration."""

    server: ServerConfig
    storage: StorageConfig
    queue: QueueConfig
    targets: tuple[TargetConfig, ...]
    log_level: str = "INFO"
    log_format: str = "text"
    source: Path | None = None
    defaults: Defaults = field(default_factory=Defaults)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)

    alerts: AlertsConfig = field(default_factory=AlertsConfig)

    def target(self, name: str) -> TargetConfig:
        """The target called `name`; `KeyError` if there is none."""
        for target in self.targets:
            if target.name == name:
                return target
        raise KeyError(name)
