"""Run the Flask app under gunicorn, programmatically (``sipgate-crm web``)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from connector.config.sections import Config
from connector.logs import RedactingFilter, Redactor

__all__ = ["GunicornServer", "RedactingLogger"]


class RedactingLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger: nothing after the webhook path, no secret and no control character
    reaches the access or error log (a mistyped secret in the path stays out too)."""

    redact: Redactor = Redactor([], None)
    log_format: str = "text"

    def setup(self, cfg: Any) -> None:
        """gunicorn's own error log (e.g. "Error handling request POST /webhooks/…/<secret>")
        gets the same scrubbing as ours, and both its logs our `log_format`."""
        from connector.logformat import apply_format

        super().setup(cfg)
        apply_format(self.log_format, (self.error_log, self.access_log))
        scrub = RedactingFilter(self.redact)
        for handler in self.error_log.handlers:
            handler.addFilter(scrub)

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """The access line, with the webhook's call id once its body was parsed (JSON lines)."""
        from connector.logformat import log_context
        from connector.web.webhooks import CALL_ID_KEY

        call_id = environ.get(CALL_ID_KEY) if isinstance(environ, dict) else None
        if call_id is None:
            super().access(resp, req, environ, request_time)
            return
        with log_context(call_id=call_id):
            super().access(resp, req, environ, request_time)

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        """The access log's atoms, each one the format uses redacted (the others never reach
        a log line). A format of only `_DIRECT_ATOMS` (the service's) gets just those; any
        other gets gunicorn's whole table, which holds every header and environ value."""
        keys = _format_keys(self.cfg.access_log_format)
        atoms: dict[str, Any]
        if isinstance(environ, dict) and all(key in _DIRECT_ATOMS for key in keys):
            atoms = {key: _DIRECT_ATOMS[key](resp, environ, request_time) for key in keys}
        else:
            atoms = super().atoms(resp, req, environ, request_time)
        for key in keys:
            value = atoms.get(key)
            if isinstance(value, str):
                atoms[key] = self.redact(value)
        return atoms


@functools.cache
def _format_keys(access_log_format: str) -> tuple[str, ...]:
    """The atom names a ``%(name)s`` access log format refers to. gunicorn stores header and
    environ atoms such as ``{X-Real-IP}i`` lower-cased and looks them up so; ``U`` and ``u``
    are different atoms."""
    names = _ATOM.findall(access_log_format)
    return tuple(dict.fromkeys(n.lower() if n.startswith("{") else n for n in names))


_ATOM = re.compile(r"%\(([^)]+)\)")
_Atom = Callable[[Any, dict[str, Any], timedelta], Any]


def _status(resp: Any, _environ: dict[str, Any], _took: timedelta) -> Any:
    status = resp.status
    return status.split(None, 1)[0] if isinstance(status, str) else status


def _sent(resp: Any, _environ: dict[str, Any], _took: timedelta) -> str:
    sent = getattr(resp, "sent", None)
    return "-" if sent is None else str(sent)


def _environ_atom(key: str, default: str | None = None) -> _Atom:
    return lambda _resp, environ, _took: environ.get(key, default)


#: Access log atoms that need neither the headers nor the whole environ, computed as gunicorn's
#: `Logger.atoms` computes them (a test holds each one to gunicorn's value).
_DIRECT_ATOMS: dict[str, _Atom] = {
    "h": _environ_atom("REMOTE_ADDR", "-"),
    "m": _environ_atom("REQUEST_METHOD"),
    "U": _environ_atom("PATH_INFO"),
    "q": _environ_atom("QUERY_STRING"),
    "H": _environ_atom("SERVER_PROTOCOL"),
    "s": _status,
    "b": _sent,
    "B": lambda resp, _environ, _took: getattr(resp, "sent", None),
    "T": lambda _resp, _environ, took: took.seconds,
    "D": lambda _resp, _environ, took: took.seconds * 1_000_000 + took.microseconds,
    "M": lambda _resp, _environ, took: took.seconds * 1000 + int(took.microseconds / 1000),
    "L": lambda _resp, _environ, took: f"{took.seconds}.{took.microseconds:06d}",
}


def _child_exit(_server: Any, worker: Any) -> None:
    """prometheus-client's multiprocess mode: forget the live values of an exited worker."""
    from connector.metrics.exposition import mark_dead

    mark_dead(worker.pid)


class GunicornServer(BaseApplication):  # type: ignore[misc]
    """gunicorn with our app factory; every worker process opens its own ledger connections."""

    def __init__(
        self,
        config: Config,
        bind: str,
        workers: int | None = None,
        threads: int | None = None,
        *,
        probes: Callable[[], Mapping[str, Callable[[], object]]] | None = None,
    ) -> None:
        threads = threads or config.server.threads
        self.service_config = config
        self.probes = probes
        binds = [bind]
        if config.server.metrics_bind:
            if bind.rpartition(":")[2] == config.server.metrics_port:
                raise ValueError(f"server.metrics_bind needs another port than {bind}.")
            binds.append(config.server.metrics_bind)
        self.options: dict[str, Any] = {
            # With server.metrics_bind a second listener; the app tells them apart by port.
            "bind": binds,
            "workers": workers or config.server.workers,
            # Threads overlap one request's fsync with another's parsing and validation.
            "worker_class": "gthread" if threads > 1 else "sync",
            "threads": threads,
            # A process takes no more connections than it has threads: one whose threads are all
            # held by slow senders leaves new connections to a process with a free thread.
            "worker_connections": threads,
            "timeout": config.server.timeout_seconds,
            "graceful_timeout": config.server.timeout_seconds,
            "accesslog": "-",
            # Full request lines would put a path secret into the access log.
            "access_log_format": '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss',
            "logger_class": RedactingLogger,
            "errorlog": "-",
            "loglevel": config.log_level.lower(),
            # Only the configured proxies may set X-Forwarded-Proto and friends; and nobody may
            # set SCRIPT_NAME/PATH_INFO by header (gunicorn answered 500 when they did not fit).
            "forwarded_allow_ips": ",".join(
                str(network) for network in config.server.proxy_addresses
            )
            if config.server.trusted_proxies
            else "",
            "forwarder_headers": "",
            "child_exit": _child_exit,
        }
        RedactingLogger.redact = Redactor([config.server.secret or ""], config.server.webhook_path)
        RedactingLogger.log_format = config.log_format
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        from connector.logformat import apply_format
        from connector.logs import configure_logging
        from connector.web.app import create_app

        server = self.service_config.server
        configure_logging(self.service_config.log_level, [server.secret or ""], server.webhook_path)
        apply_format(self.service_config.log_format)
        probes = self.probes() if self.probes else None
        return create_app(self.service_config, probes=probes)
