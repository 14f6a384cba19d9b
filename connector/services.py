"""The composition root: wires ledger, queue, adapters, pipeline and relay from a `Config`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from connector.adapters import Adapter, build_adapter
from connector.config.sections import Config
from connector.delivery.alerts import Alerter, AlertWorker
from connector.delivery.memo import LedgerMemo
from connector.delivery.observed import observed
from connector.delivery.pipeline import DeliveryPipeline
from connector.delivery.queue import DeliveryQueue, make_huey
from connector.delivery.relay import Relay
from connector.delivery.requests import RequestRunner
from connector.delivery.retention import RetentionWorker, retaining_targets
from connector.ledger.clock import Clock, system_clock
from connector.ledger.ledger import Ledger
from connector.ledger.requests import Requests

__all__ = ["Services", "run_worker"]

log = logging.getLogger(__name__)


@dataclass
class Services:
    """The long-lived objects a worker or an operator command works with."""

    config: Config
    ledger: Ledger
    queue: DeliveryQueue
    adapters: dict[str, Adapter] = field(default_factory=dict)

    @classmethod
    def open(cls, config: Config, *, migrate: bool = True, clock: Clock = system_clock) -> Services:
        """Open the ledger (migrating it) and the queue named in `config`."""
        ledger = Ledger.from_url(config.storage.url, clock)
        if migrate:
            ledger.migrate()
        return cls(config=config, ledger=ledger, queue=DeliveryQueue(make_huey(config.queue.url)))

    def pipeline(self) -> DeliveryPipeline:
        """A pipeline over every configured target; this process's queue messages now run it."""
        if not self.adapters:
            self.adapters = {t.name: build_adapter(t) for t in self.config.targets}
            for name, adapter in self.adapters.items():
                adapter.bind_memo(LedgerMemo(self.ledger, name))
        pipeline = DeliveryPipeline(
            self.ledger,
            self.adapters,
            self.config.queue,
            policies={t.name: t.policy for t in self.config.targets},
        )
        self.queue.serve(observed(self.ledger, pipeline.process))
        return pipeline

    def close(self) -> None:
        """Close adapters and database pools."""
        for adapter in self.adapters.values():
            adapter.close()
        self.ledger.close()


def run_worker(config: Config) -> None:
    """Run the Huey consumer, the relay and the console's request runner until SIGINT/SIGTERM."""
    services = Services.open(config)
    leases = services.pipeline().leases
    runner = RequestRunner(
        Requests(services.ledger.engine),
        services.adapters,
        {t.name: t.policy for t in config.targets},
        config.queue.poll_interval_seconds,
    )
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
        # An idle SQLite queue is polled at most this far apart (Huey's default backs off to
        # 10 s), so a message the relay sends is picked up at once.
        max_delay=min(0.5, config.queue.poll_interval_seconds),
    )
    log.info(
        "worker started: %d threads, targets: %s",
        config.queue.workers,
        ", ".join(services.adapters),
    )
    retention = RetentionWorker(
        services.ledger, config.retention, retaining_targets(services.adapters)
    )
    alerts = AlertWorker(Alerter(services.ledger, config.alerts))
    leases.start()
    relay.start()
    retention.start()
    runner.start()
    if config.alerts.channels:
        alerts.start()
    try:
        consumer.run()
    finally:
        relay.stop()
        retention.stop()
        runner.stop()
        alerts.stop()
        leases.stop()
        services.close()
