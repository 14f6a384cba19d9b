"""Owner ids by e-mail address, cached: the planner asks for the owner of every call."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["OwnerCache"]


class OwnerCache:
    """`resolve` answers from `lookup` (e-mail → owner id or ``None``), each answer kept for
    `ttl` seconds (0: never kept) by the e-mail address compared without case."""

    def __init__(
        self,
        lookup: Callable[[str], str | None],
        ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lookup = lookup
        self.ttl = ttl
        self.clock = clock
        self._known: dict[str, tuple[float, str | None]] = {}

    def resolve(self, email: str) -> str | None:
        """The owner id of `email`, looked up at most once per `ttl`; unknown owners too."""
        key = email.strip().casefold()
        cached = self._known.get(key)
        if cached is not None and cached[0] > self.clock():
            return cached[1]
        owner = self.lookup(email.strip())
        if self.ttl > 0:
            self._known[key] = (self.clock() + self.ttl, owner)
        return owner
