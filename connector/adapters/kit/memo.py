"""The durable key-value store an adapter shares with every worker of its target."""

from __future__ import annotations

from abc import ABC, abstractmethod

__all__ = ["Memo", "MemoryMemo"]


class Memo(ABC):
    """A small durable key-value store per target, shared by all workers (kept in the ledger).

    Adapters use it for facts that outlive one delivery, e.g. "this new number already got a
    contact" while the CRM's search index has not caught up yet.
    """

    @abstractmethod
    def get(self, key: str) -> str | None:
        """The value stored under `key`, or ``None``."""

    @abstractmethod
    def reserve(self, key: str, value: str) -> bool:
        """Store `value` under `key` only if the key is free; ``True`` if this call stored it."""

    @abstractmethod
    def set(self, key: str, value: str) -> None:
        """Store `value` under `key`, replacing what was there."""

    @abstractmethod
    def replace(self, key: str, expected: str | None, value: str) -> bool:
        """Compare and set: store `value` only if `key` still holds `expected` (``None``: absent).

        ``True`` if this call stored it; of several workers replacing the same value, one wins.
        """

    @abstractmethod
    def delete(self, key: str) -> None:
        """Forget `key`."""


class MemoryMemo(Memo):
    """A `Memo` in a dict: for tests and one-off tools."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def reserve(self, key: str, value: str) -> bool:
        if key in self.values:
            return False
        self.values[key] = value
        return True

    def set(self, key: str, value: str) -> None:
        self.values[key] = value

    def replace(self, key: str, expected: str | None, value: str) -> bool:
        if self.values.get(key) != expected:
            return False
        self.values[key] = value
        return True

    def delete(self, key: str) -> None:
        self.values.pop(key, None)
