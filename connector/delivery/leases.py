"""The worker's heartbeat: keeps the short leases of running attempts alive, and tells an
attempt when its lease is gone so it stops before another worker takes over.

See `connector.ledger.ledger` for why leases are short and renewed rather than long.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from connector.ledger.ledger import MAX_ATTEMPT, Claim, LeaseLost, Ledger

__all__ = ["HeldLease", "LeaseKeeper"]

log = logging.getLogger(__name__)


class HeldLease:
    """One running attempt's lease as its holder sees it."""

    def __init__(self, claim: Claim, taken_at: datetime, lease: timedelta) -> None:
        self.claim = claim
        self.taken_at = taken_at
        self.valid_until = taken_at + lease
        self.lost = False

    def renewed(self, started_at: datetime, lease: timedelta) -> None:
        """A renewal that started at `started_at` succeeded."""
        self.valid_until = max(self.valid_until, started_at + lease)

    def check(self, now: datetime) -> None:
        """Raise `LeaseLost` unless the lease is certainly still ours at `now`."""
        if self.lost or now >= self.valid_until:
            raise LeaseLost(f"delivery {self.claim.delivery_id}")


class LeaseKeeper(threading.Thread):
    """Renews the leases of every attempt this process runs, every third of a lease, until
    stopped; an attempt older than `MAX_ATTEMPT` is not renewed any more."""

    def __init__(self, ledger: Ledger, lease: timedelta) -> None:
        super().__init__(name="lease-keeper", daemon=True)
        self.ledger = ledger
        self.lease = lease
        self.interval = lease.total_seconds() / 3
        self.stopped = threading.Event()
        self._held: dict[str, HeldLease] = {}
        self._lock = threading.Lock()

    def hold(self, claim: Claim, taken_at: datetime) -> HeldLease:
        """Start renewing `claim`, taken (its lease written) no earlier than `taken_at`."""
        held = HeldLease(claim, taken_at, self.lease)
        with self._lock:
            self._held[claim.token] = held
        return held

    def release(self, held: HeldLease) -> None:
        """The attempt ended: stop renewing its lease."""
        with self._lock:
            self._held.pop(held.claim.token, None)

    def renew(self) -> None:
        """One heartbeat: extend every held lease, mark the ones found taken as lost."""
        started = self.ledger.clock()
        with self._lock:
            current = [h for h in self._held.values() if started - h.taken_at < MAX_ATTEMPT]
        if not current:
            return
        ours = self.ledger.renew([h.claim for h in current], self.lease)
        for held in current:
            if held.claim.token in ours:
                held.renewed(started, self.lease)
            else:
                held.lost = True

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.renew()
            except Exception:
                # The ledger is unreachable: leases run out, attempts notice at their next step.
                log.warning("lease renewal failed; trying again", exc_info=True)

    def stop(self) -> None:
        """Stop renewing (running attempts then lose their leases when they expire)."""
        self.stopped.set()
