"""What the web side works with: the configuration, the ledger, and readiness probes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask, current_app

from connector.config.sections import Config
from connector.ledger.ledger import Ledger

__all__ = ["WebState"]

_KEY = "sipgate_crm"


@dataclass(frozen=True)
class WebState:
    """The long-lived objects of one web worker process (it never talks to a queue or a CRM)."""

    config: Config
    ledger: Ledger
    probes: dict[str, Callable[[], object]] = field(default_factory=dict)

    def init_app(self, app: Flask) -> None:
        """Make this the state of `app`, reachable through `WebState.current()`."""
        app.extensions[_KEY] = self

    @staticmethod
    def current() -> WebState:
        """The state of the app handling the current request."""
        state: WebState = current_app.extensions[_KEY]
        return state
