"""Wire the pieces together from a `Config`: ledger, queue, adapters, pipeline, worker."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from connector.adapters import Adapter, adapter_class
from connector.config import Config
from connector.ledger import Ledger
from connector.memo import LedgerMemo
from connector.pipeline import DeliveryPipeline
from connector.queue import DeliveryQueue, Relay, make_huey

__all__ = ["Services", "build_adapters", "run_worker"]

log = logging.getLogger(__name__)


def build_adapters(config: Config) -> dict[str, Adapter]:
    """One adapter instance per configured target, by target name."""
    return {t.name: adapter_class(t.type).from_config(t) for t in config.targets}


@dataclass
class Services:
    """The long-lived objects a process of this service works with."""

    config: Config
    ledger: Ledger
    queue: DeliveryQueue
    adapters: dict[str, Adapter] = field(default_factory=dict)

    @classmethod
    def open(cls, config: Config, *, migrate: bool = True) -> Services:
        """Open the ledger (migrating it) and the queue named in `config`."""
        ledger = Ledger.from_url(config.storage.url)
        if migrate:
            ledger.migrate()
        return cls(config=config, ledger=ledger, queue=DeliveryQueue(make_huey(config.queue.url)))

    def pipeline(self) -> DeliveryPipeline:
        """A pipeline over every configured target (adapters are built on first use)."""
        if not self.adapters:
            self.adapters = build_adapters(self.config)
            for name, adapter in self.adapters.items():
                adapter.bind_memo(LedgerMemo(self.ledger, name))
        pipeline = DeliveryPipeline(
            self.ledger,
            self.adapters,
            self.config.queue,
            policies={t.name: t.policy for t in self.config.targets},
        )
        self.queue.bind(pipeline)
        return pipeline

    def close(self) -> None:
        """Close adapters and database pools."""
        for adapter in self.adapters.values():
            adapter.close()
        self.ledger.engine.dispose()


def run_worker(config: Config) -> None:
    """Run the Huey consumer and the relay until SIGINT/SIGTERM."""
    services = Services.open(config)
    services.pipeline()
    relay = Relay(
        services.ledger,
        services.queue,
        config.queue.poll_interval_seconds,
        timedelta(seconds=config.queue.requeue_after_seconds),
    )
    consumer = services.queue.huey.create_consumer(
        workers=config.queue.workers,
        worker_type="thread",
        periodic=False,
        check_worker_health=True,
    )
    log.info(
        "worker started: %d threads, targets: %s",
        config.queue.workers,
        ", ".join(services.adapters),
    )
    relay.start()
    try:
        consumer.run()
    finally:
        relay.stop()
        services.close()
