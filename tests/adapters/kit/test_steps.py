"""create_once: a create whose answer was lost is looked up, never made twice."""

from __future__ import annotations

import pytest

from connector.adapters import (
    Journal,
    OutcomeUnknown,
    PermanentError,
    RetryableError,
    create_once,
    fingerprint,
)


class Crm:
    """Objects by id; `lose_answer` applies the next create but loses its answer."""

    def __init__(self) -> None:
        self.objects: list[str] = []
        self.lookups = 0
        self.lose_answer = False
        self.reject = False

    def create(self) -> str:
        if self.reject:
            raise PermanentError("rejected")
        self.objects.append(f"obj-{len(self.objects) + 1}")
        if self.lose_answer:
            self.lose_answer = False
            raise OutcomeUnknown("answer lost")
        return self.objects[-1]

    def lookup(self) -> str | None:
        self.lookups += 1
        return self.objects[-1] if self.objects else None


def test_creates_once_and_journals_the_id() -> None:
    crm, journal = Crm(), Journal()
    assert create_once(journal, "call", crm.create, crm.lookup) == "obj-1"
    assert create_once(journal, "call", crm.create, crm.lookup) == "obj-1"
    assert crm.objects == ["obj-1"] and crm.lookups == 0
    assert journal.get("call") == "obj-1"


def test_a_lost_answer_is_looked_up_before_creating_again() -> None:
    crm, journal = Crm(), Journal()
    crm.lose_answer = True
    with pytest.raises(OutcomeUnknown):
        create_once(journal, "call", crm.create, crm.lookup)
    retry = Journal(journal.as_dict())
    assert create_once(retry, "call", crm.create, crm.lookup) == "obj-1"
    assert crm.objects == ["obj-1"] and crm.lookups == 1


def test_a_lost_answer_that_created_nothing_is_created_after_the_lookup() -> None:
    crm, journal = Crm(), Journal()
    journal.record("call.pending", 0.0)
    assert create_once(journal, "call", crm.create, crm.lookup, clock=lambda: 100.0) == "obj-1"
    assert crm.lookups == 1


def test_waits_while_the_search_may_lag_behind() -> None:
    crm, journal = Crm(), Journal({"call.pending": 100.0})
    with pytest.raises(RetryableError) as caught:
        create_once(journal, "call", crm.create, crm.lookup, settle_seconds=60, clock=lambda: 130.0)
    assert caught.value.retry_after == 30.0
    assert crm.objects == []


def test_a_rejected_create_undoes_its_marker() -> None:
    crm, journal = Crm(), Journal()
    crm.reject = True
    with pytest.raises(PermanentError):
        create_once(journal, "call", crm.create, crm.lookup)
    assert journal.get("call.pending") is None
    crm.reject = False
    assert create_once(journal, "call", crm.create, crm.lookup) == "obj-1"
    assert crm.lookups == 0


def test_a_rejected_create_keeps_an_earlier_unknown_marker() -> None:
    crm, journal = Crm(), Journal({"call.pending": 5.0})
    crm.reject = True
    crm.objects = []
    with pytest.raises(PermanentError):
        create_once(journal, "call", crm.create, crm.lookup, clock=lambda: 500.0)
    assert journal.get("call.pending") == 5.0


def test_look_first_asks_before_any_create() -> None:
    crm, journal = Crm(), Journal()
    crm.objects = ["obj-9"]
    assert create_once(journal, "call", crm.create, crm.lookup, look_first=True) == "obj-9"


def test_fingerprints_ignore_whitespace_runs_and_differ_by_value() -> None:
    assert fingerprint("Call  back\n", 3) == fingerprint("Call back", 3)
    assert fingerprint("Call back", 3) != fingerprint("Call back", 4)
    assert fingerprint(None) != fingerprint("None")
