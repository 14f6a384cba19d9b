"""Multiprocess setup and the text ``/metrics`` answers with.

prometheus-client's multiprocess mode, as documented: every process finds its directory in
``PROMETHEUS_MULTIPROC_DIR`` before the library is imported, the directory is wiped when its
owner starts, and gunicorn's ``child_exit`` hook marks a finished web worker dead. Web processes
write to ``<server.metrics_directory>/web``, the worker on the same host to ``…/worker`` (each
wipes only its own); ``/metrics`` adds both up, and the ledger gauges on top.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from connector.ledger.ledger import Ledger

__all__ = ["ENV_DIRECTORY", "enable_multiprocess", "mark_dead", "render"]

ENV_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"
SIDES = ("web", "worker")


def enable_multiprocess(directory: Path, side: str, *, wipe: bool) -> Path:
    """Make this process (and its children) write metrics to ``directory/side``.

    Call before anything imports prometheus_client. `wipe`: start from an empty directory (the
    web's gunicorn master and the worker do, at their start).
    """
    own = directory / side
    if wipe and own.exists():
        shutil.rmtree(own)
    own.mkdir(parents=True, exist_ok=True)
    os.environ[ENV_DIRECTORY] = str(own)
    return own


def mark_dead(pid: int) -> None:
    """gunicorn ``child_exit``: drop the live values of a web worker that exited."""
    from prometheus_client import multiprocess

    if os.environ.get(ENV_DIRECTORY):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def render(ledger: Ledger) -> tuple[bytes, str]:
    """The exposition text and its content type: every process's values, the ledger's gauges.

    Without multiprocess mode (tests, an embedded app) this process's own values are reported.
    """
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    from connector.metrics.ledger import LedgerCollector

    counted = CollectorRegistry()
    own = os.environ.get(ENV_DIRECTORY)
    if own:
        for side in SIDES:
            path = Path(own).parent / side
            if path.is_dir():
                MultiProcessCollector(counted, path=str(path))  # type: ignore[no-untyped-call]
    gauges = CollectorRegistry()
    gauges.register(LedgerCollector(ledger))
    text = generate_latest(counted if own else REGISTRY) + generate_latest(gauges)
    return text, CONTENT_TYPE_LATEST
