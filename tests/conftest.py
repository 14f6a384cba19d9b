"""Shared fixtures: example payloads, configurations written to temporary folders, services."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector.config.load import load_config
from connector.config.sections import Config
from connector.services import Services
from tests.support.clock import ManualClock

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def example_v1() -> dict[str, Any]:
    """sipgate's example CI webhook payload (version 1), as a fresh dict."""
    return json.loads((FIXTURES / "example-v1.json").read_text())


@pytest.fixture
def example_legacy() -> dict[str, Any]:
    """The older "AI Assistant" payload shape."""
    return json.loads((FIXTURES / "example-legacy.json").read_text())


def base_config(folder: Path, **sections: Any) -> dict[str, Any]:
    """A working configuration document with SQLite files in `folder`, sections overridden."""
    document: dict[str, Any] = {
        "server": {"webhook_path": "/webhooks/sipgate"},
        "storage": {"url": f"sqlite:///{folder / 'connector.db'}"},
        "queue": {"url": "memory://"},
        "targets": [
            {"name": "warehouse", "type": "database", "url": f"sqlite:///{folder / 'calls.db'}"}
        ],
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(document.get(key), dict):
            document[key] = {**document[key], **value}
        else:
            document[key] = value
    return document


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Config]:
    """Write a configuration (base_config with overrides) to tmp_path and load it."""

    def write(**sections: Any) -> Config:
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(base_config(tmp_path, **sections)))
        return load_config(path)

    return write


@pytest.fixture
def clock() -> ManualClock:
    """The time of the `services` ledger and pipelines: it moves only when a test advances it."""
    return ManualClock()


@pytest.fixture
def services(write_config: Callable[..., Config], clock: ManualClock) -> Iterator[Services]:
    """Ledger (SQLite, migrated, on `clock`) and an in-memory queue for the default config."""
    opened = Services.open(write_config(), clock=clock)
    yield opened
    opened.close()
