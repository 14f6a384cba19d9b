"""CallerClaims: one record per new caller across deliveries and workers."""

from __future__ import annotations

import pytest

from connector.adapters import (
    CallerClaims,
    Journal,
    MemoryMemo,
    OutcomeUnknown,
    PermanentError,
    RetryableError,
    parse_stored,
)

NUMBER = parse_stored("+49 30 1234567", "DE")
assert NUMBER is not None


class Contacts:
    def __init__(self) -> None:
        self.created: list[str] = []
        self.fail: Exception | None = None

    def create(self) -> str:
        if self.fail is not None:
            error, self.fail = self.fail, None
            if isinstance(error, OutcomeUnknown):
                self.created.append(f"c{len(self.created) + 1}")
            raise error
        self.created.append(f"c{len(self.created) + 1}")
        return self.created[-1]

    def lookup(self) -> str | None:
        return self.created[-1] if self.created else None


def test_two_deliveries_for_one_new_caller_create_one_record() -> None:
    memo, crm = MemoryMemo(), Contacts()
    claims = CallerClaims(memo, "contact")
    first = claims.record_for(NUMBER, Journal(), crm.create, lambda: None)
    second = claims.record_for(NUMBER, Journal(), crm.create, lambda: None)
    assert first == second == "c1" and crm.created == ["c1"]


def test_the_memo_key_holds_no_phone_number() -> None:
    memo = MemoryMemo()
    CallerClaims(memo, "contact").record_for(NUMBER, Journal(), Contacts().create, lambda: None)
    (key,) = memo.values
    assert key.startswith("contact:") and "1234567" not in key


def test_a_delivery_waits_while_another_one_creates() -> None:
    memo, clock = MemoryMemo(), [1000.0]
    claims = CallerClaims(memo, "contact", clock=lambda: clock[0])
    memo.set(claims.key(NUMBER), "pending|990.0|other-token")
    with pytest.raises(RetryableError, match="Another delivery"):
        claims.record_for(NUMBER, Journal(), Contacts().create, lambda: None)


def test_a_stale_claim_is_taken_over_after_a_lookup() -> None:
    memo, crm = MemoryMemo(), Contacts()
    crm.created = ["c7"]
    claims = CallerClaims(memo, "contact", stale_seconds=600, clock=lambda: 5000.0)
    memo.set(claims.key(NUMBER), "pending|100.0|dead-worker")
    assert claims.record_for(NUMBER, Journal(), crm.create, crm.lookup) == "c7"
    assert crm.created == ["c7"]
    assert memo.get(claims.key(NUMBER)) == "c7|5000.0"


def test_a_lost_answer_keeps_the_claim_and_the_retry_finds_the_record() -> None:
    memo, crm = MemoryMemo(), Contacts()
    claims = CallerClaims(memo, "contact")
    crm.fail = OutcomeUnknown("lost")
    journal = Journal()
    with pytest.raises(OutcomeUnknown):
        claims.record_for(NUMBER, journal, crm.create, crm.lookup)
    assert memo.get(
        claims.key(NUMBER),
    ).startswith("pending|")  # type: ignore[union-attr]
    again = claims.record_for(NUMBER, Journal(journal.as_dict()), crm.create, crm.lookup)
    assert again == "c1" and crm.created == ["c1"]


def test_a_rejected_create_frees_the_claim() -> None:
    memo, crm = MemoryMemo(), Contacts()
    claims = CallerClaims(memo, "contact")
    crm.fail = PermanentError("rejected")
    with pytest.raises(PermanentError):
        claims.record_for(NUMBER, Journal(), crm.create, crm.lookup)
    assert memo.values == {}


def test_a_remembered_record_that_is_gone_is_replaced() -> None:
    memo, crm = MemoryMemo(), Contacts()
    claims = CallerClaims(memo, "contact", clock=lambda: 10.0)
    memo.set(claims.key(NUMBER), "gone-1|5.0")
    record = claims.record_for(
        NUMBER, Journal(), crm.create, lambda: None, is_live=lambda rid: rid != "gone-1"
    )
    assert record == "c1"


def test_an_expired_memory_is_not_trusted() -> None:
    memo, crm = MemoryMemo(), Contacts()
    claims = CallerClaims(memo, "contact", remember_seconds=60, clock=lambda: 1000.0)
    memo.set(claims.key(NUMBER), "old-1|5.0")
    assert claims.record_for(NUMBER, Journal(), crm.create, lambda: None) == "c1"


def test_a_lost_create_is_looked_up_until_the_search_can_be_trusted() -> None:
    memo, contacts, clock = MemoryMemo(), Contacts(), [1000.0]
    claims = CallerClaims(memo, "contact", settle_seconds=60, clock=lambda: clock[0])
    journal = Journal()
    contacts.fail = OutcomeUnknown("answer lost")
    with pytest.raises(OutcomeUnknown):
        claims.record_for(NUMBER, journal, contacts.create, lambda: None)
    clock[0] += 20  # the search does not show the lost contact yet
    with pytest.raises(RetryableError, match="unknown") as waiting:
        claims.record_for(NUMBER, journal, contacts.create, lambda: None)
    assert waiting.value.retry_after == pytest.approx(40)
    clock[0] += 40  # now a lookup that finds nothing is trusted
    assert claims.record_for(NUMBER, journal, contacts.create, lambda: None) == "c2"
