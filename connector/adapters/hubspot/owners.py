"""Owner ids by e-mail address (``resolve_owner``), cached like the phone searches."""

from __future__ import annotations

from collections.abc import Callable

from connector.adapters.hubspot.sdk import SdkBase, _results
from connector.adapters.hubspot.search import _RecordCache


class OwnersMixin(SdkBase):
    """`resolve_owner` of the HubSpot adapter."""

    cache: _RecordCache  # its ``ttl`` (``cache_seconds``) also applies to owners
    _owner_cache: dict[str, tuple[float, str | None]]  # e-mail → (valid until, owner id)
    _cache_clock: Callable[[], float]

    def resolve_owner(self, email: str) -> str | None:
        """The id of the active HubSpot owner with this e-mail address, or ``None``.

        Answers are kept for ``cache_seconds``: the planner asks for every call.
        """
        key = email.strip().casefold()
        cached = self._owner_cache.get(key)
        if cached is not None and cached[0] > self._cache_clock():
            return cached[1]
        operation = "looking up an owner"
        page = self._send("general", operation, self._owners.get_page, email=email, limit=1)
        results = _results(page, operation)
        owner = str(results[0].id) if results else None
        if self.cache.ttl > 0:
            self._owner_cache[key] = (self._cache_clock() + self.cache.ttl, owner)
        return owner
