"""What one delivery has written so far, kept by the ledger across crashes and retries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Journal"]


class Journal:
    """What a delivery has already written, persisted at once, so a retry never writes it twice.

    Adapters `record` the reference of every object they create right after creating it and `get`
    it before creating; the ledger keeps the journal across crashes and retries.
    """

    def __init__(
        self, refs: Mapping[str, Any] | None = None, save: Callable[[str, Any], None] | None = None
    ) -> None:
        self._refs = dict(refs or {})
        self._save = save

    def get(self, key: str) -> Any:
        """The reference recorded under `key`, or ``None``."""
        return self._refs.get(key)

    def record(self, key: str, value: Any) -> None:
        """Remember `value` under `key` and persist it before returning."""
        self._refs[key] = value
        if self._save is not None:
            self._save(key, value)

    def as_dict(self) -> dict[str, Any]:
        """Everything recorded so far."""
        return dict(self._refs)
