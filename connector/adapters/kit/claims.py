"""One record per new caller: a shared claim, so concurrent deliveries create one contact.

A CRM's phone search lags behind its writes, so two deliveries for the same unknown number (two
calls in a row, two workers) would each create a contact. `CallerClaims.record_for` takes a claim
in the target's `Memo` first (keyed by a hash of the number: no phone numbers in the ledger):

* the first delivery claims the number and creates the record (with `create_once`, so a lost
  answer is looked up, not created twice), then remembers the record for `remember_seconds`;
* a delivery that finds the record remembered reuses it (while `is_live` says it still exists);
* a delivery that finds another one creating it retries shortly (`RetryableError`), and a claim
  older than `stale_seconds` (its worker died) is taken over after a lookup, which is trusted
  to find nothing only `settle_seconds` after the lost attempt (a CRM whose search lags).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable

from connector.adapters.kit.errors import OutcomeUnknown, PermanentError, RetryableError
from connector.adapters.kit.journal import Journal
from connector.adapters.kit.memo import Memo
from connector.adapters.kit.steps import create_once
from connector.phone import PhoneNumber

__all__ = ["CallerClaims"]

_PENDING = "pending"


class CallerClaims:
    """Claims for records of `kind` (e.g. ``contact``, ``lead``) created for new callers."""

    def __init__(
        self,
        memo: Memo,
        kind: str,
        *,
        remember_seconds: float = 24 * 3600.0,
        stale_seconds: float = 600.0,
        busy_retry_seconds: float = 15.0,
        settle_seconds: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.memo = memo
        self.kind = kind
        self.remember_seconds = remember_seconds
        self.stale_seconds = stale_seconds
        self.busy_retry_seconds = busy_retry_seconds
        self.settle_seconds = settle_seconds
        self.clock = clock

    def key(self, number: PhoneNumber) -> str:
        """The memo key of `number`'s record (a hash of its E.164 form)."""
        digest = hashlib.sha256(number.e164.encode("utf-8")).hexdigest()[:32]
        return f"{self.kind}:{digest}"

    def record_for(
        self,
        number: PhoneNumber,
        journal: Journal,
        create: Callable[[], str],
        lookup: Callable[[], str | None],
        is_live: Callable[[str], bool] = lambda _record_id: True,
    ) -> str:
        """The id of the record for the new caller `number`: journaled, remembered, or created
        by `create` once across all deliveries (`lookup` finds one a lost attempt made)."""
        recorded = journal.get(self.kind)
        if recorded:
            return str(recorded)
        key = self.key(number)
        token_key = f"{self.kind}.claim"
        token = str(journal.get(token_key) or secrets.token_hex(8))
        claim = f"{_PENDING}|{self.clock()}|{token}"
        known, look_first = self._claim(key, claim, token, is_live)
        if known is not None:
            journal.record(self.kind, known)
            return known
        journal.record(token_key, token)
        try:
            record_id = create_once(
                journal,
                self.kind,
                create,
                lookup,
                look_first=look_first,
                settle_seconds=self.settle_seconds,
                clock=self.clock,
            )
        except OutcomeUnknown:
            raise  # the claim stays ours: the retry takes it over and looks first
        except (PermanentError, RetryableError):
            self.memo.delete(key)  # nothing was created: the next delivery may try
            raise
        self.memo.set(key, f"{record_id}|{self.clock()}")
        return record_id

    def forget(self, number: PhoneNumber) -> None:
        """Forget `number`'s record (it was merged or deleted in the CRM)."""
        self.memo.delete(self.key(number))

    def _claim(
        self, key: str, claim: str, token: str, is_live: Callable[[str], bool]
    ) -> tuple[str | None, bool]:
        """(record to reuse, False), or (None, look first?) once this delivery holds the claim."""
        if self.memo.reserve(key, claim):
            return None, False
        current = self.memo.get(key)
        state, stamp, owner = [*(current or "").split("|"), "", "", ""][:3]
        try:
            age = self.clock() - float(stamp)
        except ValueError:
            age = float("inf")
        busy = RetryableError(
            f"Another delivery is creating the {self.kind} for this caller right now.",
            retry_after=self.busy_retry_seconds,
        )
        if state and state != _PENDING and age < self.remember_seconds and is_live(state):
            return state, False
        if state == _PENDING and owner != token and age < self.stale_seconds:
            raise busy
        if not self.memo.replace(key, current, claim):  # another delivery took it first
            raise busy
        return None, True
