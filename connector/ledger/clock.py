"""The time the ledger and the pipeline go by: injectable, so tests move it instead of rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "system_clock"]

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware UTC."""


def system_clock() -> datetime:
    """The machine's time in UTC (workers' clocks must agree within a second: run NTP)."""
    return datetime.now(UTC)
