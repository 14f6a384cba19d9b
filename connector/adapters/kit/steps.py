"""Create an object exactly once, also when the answer to the create was lost.

`create_once` is the protocol every CRM write needs: "create, and if the answer was lost, look
it up by a key before creating again". The journal holds the created object's id under `key` and,
while a create is on its way, a ``<key>.pending`` marker (the time it was sent). A retry after an
`OutcomeUnknown` finds the marker and asks `lookup` first; only when the object is not there (and
the CRM's search has had `settle_seconds` to show it) is it created again. A create the CRM
answered with any other error was not applied: its marker is undone.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from connector.adapters.kit.errors import AdapterError, OutcomeUnknown, RetryableError
from connector.adapters.kit.journal import Journal

__all__ = ["create_once", "fingerprint", "pending_key"]


def pending_key(key: str) -> str:
    """The journal key of the marker that a create of `key` is on its way."""
    return f"{key}.pending"


def fingerprint(*values: Any) -> str:
    """SHA-256 (hex) of `values` (text with whitespace runs collapsed): a lookup key that
    identifies an object by what was sent without storing the text itself."""
    normal = [" ".join(str(v).split()) if v is not None else None for v in values]
    return hashlib.sha256(json.dumps(normal, ensure_ascii=False).encode("utf-8")).hexdigest()


def create_once(
    journal: Journal,
    key: str,
    create: Callable[[], str],
    lookup: Callable[[], str | None],
    *,
    look_first: bool = False,
    settle_seconds: float = 0.0,
    clock: Callable[[], float] = time.time,
) -> str:
    """The id of the object journaled under `key`, created by `create` at most once.

    `lookup` finds the object a lost attempt may have created (by a key the adapter wrote into
    it) and is asked only after such an attempt (or with `look_first`). While that attempt is
    younger than `settle_seconds` and `lookup` finds nothing, `RetryableError` says to look again
    later instead of creating a second object.
    """
    done = journal.get(key)
    if done:
        return str(done)
    marker = pending_key(key)
    pending = journal.get(marker)
    if pending is not None or look_first:
        found = lookup()
        if found:
            journal.record(key, found)
            return found
        age = clock() - float(pending) if pending is not None else settle_seconds
        if age < settle_seconds:
            raise RetryableError(
                f"Whether the last attempt created the {key} is unknown and the target's search "
                "may not show it yet; looking again shortly.",
                retry_after=settle_seconds - age,
            )
    journal.record(marker, clock())
    try:
        created = create()
    except OutcomeUnknown:
        raise
    except AdapterError:
        journal.record(marker, pending)  # not applied: what an earlier attempt left stays
        raise
    journal.record(key, created)
    return created
