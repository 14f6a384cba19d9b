"""The ledger-backed `Memo` the worker hands each adapter."""

from __future__ import annotations

from connector.adapters.base import Memo
from connector.ledger.ledger import Ledger

__all__ = ["LedgerMemo"]


class LedgerMemo(Memo):
    """Memos of one target, stored in the ledger's ``target_memos`` table."""

    def __init__(self, ledger: Ledger, target: str) -> None:
        self.ledger = ledger
        self.target = target

    def get(self, key: str) -> str | None:
        return self.ledger.memo_get(self.target, key)

    def reserve(self, key: str, value: str) -> bool:
        return self.ledger.memo_reserve(self.target, key, value)

    def set(self, key: str, value: str) -> None:
        self.ledger.memo_set(self.target, key, value)

    def replace(self, key: str, expected: str | None, value: str) -> bool:
        return self.ledger.memo_replace(self.target, key, expected, value)

    def delete(self, key: str) -> None:
        self.ledger.memo_delete(self.target, key)
