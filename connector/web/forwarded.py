"""Forwarded client addresses, believed only on connections from the configured proxies."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix

from connector.config.sections import IPNetwork
from connector.web.intake import in_networks

__all__ = ["TrustedProxies"]


class TrustedProxies:
    """WSGI middleware: on a connection from one of `proxies`, the client address is taken from
    X-Forwarded-For, trusting exactly the last `hops` entries (the ones our proxies appended);
    on any other connection the header is ignored and the TCP peer is the client."""

    def __init__(self, app: Any, proxies: Iterable[IPNetwork], hops: int) -> None:
        self.app = app
        self.proxies = tuple(proxies)
        # X-Forwarded-Prefix lets a proxy serve the console under a path of its own.
        self.forwarded = ProxyFix(app, x_for=hops, x_prefix=hops)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if in_networks(environ.get("REMOTE_ADDR"), self.proxies):
            return self.forwarded(environ, start_response)
        return self.app(environ, start_response)
