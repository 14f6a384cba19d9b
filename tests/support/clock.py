"""A clock tests move by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class ManualClock:
    """Stands still until `advance` moves it; starts at the real time so fresh rows are due."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        """Move forward by `seconds` and return the new time."""
        self.now += timedelta(seconds=seconds)
        return self.now
