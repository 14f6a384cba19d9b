"""The matching policy: local re-check, object priority, tie-breaks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connector.adapters import CrmRecord
from connector.config.policy import MatchingPolicy
from connector.delivery.matching import MatchOutcome, choose_records, recheck
from connector.phone import parse_sipgate

CALLER = parse_sipgate("4921163553400")
assert CALLER is not None


def rec(kind: str, rid: str, phone: str, *, owner: str | None = None, day: int = 1) -> CrmRecord:
    return CrmRecord(
        kind, rid, (phone,), owner_id=owner, modified_at=datetime(2026, 1, day, tzinfo=UTC)
    )


@pytest.mark.parametrize(
    "stored",
    [
        "0211 63553400",
        "+49 (211) 635534-00",
        "0049 211 63553400",
        "+4921163553400",
        "0211/63553400",
    ],
)
def test_every_format_of_the_callers_number_is_confirmed(stored: str) -> None:
    assert recheck([rec("contact", "1", stored)], CALLER, "DE") != []


@pytest.mark.parametrize("stored", ["+43 211 63553400", "+41 21 163553400", "0211 63553401", ""])
def test_numbers_of_other_people_or_countries_never_match(stored: str) -> None:
    assert recheck([rec("contact", "1", stored)], CALLER, "DE") == []


def test_a_record_matches_through_any_of_its_numbers() -> None:
    record = CrmRecord("contact", "1", ("+43 1 234567", "0211 63553400"))
    assert recheck([record, record], CALLER, "DE") == [record]


def test_object_priority() -> None:
    policy = MatchingPolicy(objects=("contact", "lead", "company"))
    lead = rec("lead", "L1", "0211 63553400")
    company = rec("company", "C1", "0211 63553400")
    contact = rec("contact", "K1", "0211 63553400")
    assert choose_records([company, lead], CALLER, policy, "DE").records == (lead,)
    outcome = choose_records([company, lead, contact], CALLER, policy, "DE")
    assert (outcome.records, outcome.status) == ((contact,), "matched")


def test_rejected_hits_are_counted_not_chosen() -> None:
    policy = MatchingPolicy(objects=("contact",))
    outcome = choose_records([rec("contact", "AT", "+43 211 63553400")], CALLER, policy, "DE")
    assert (outcome.status, outcome.records, outcome.rejected) == ("unmatched", (), 1)


def test_tie_break_most_recent() -> None:
    old, new = (
        rec("contact", "old", "0211 63553400", day=1),
        rec("contact", "new", "0211 63553400", day=9),
    )
    outcome = choose_records([old, new], CALLER, MatchingPolicy(objects=("contact",)), "DE")
    assert (outcome.records, outcome.status, outcome.candidates) == ((new,), "ambiguous", 2)


def test_tie_break_owner_prefers_the_mapped_owner_then_recency() -> None:
    mine = rec("contact", "mine", "0211 63553400", owner="o-1", day=1)
    other = rec("contact", "other", "0211 63553400", owner="o-2", day=9)
    policy = MatchingPolicy(objects=("contact",), tie_break="owner")
    assert choose_records([mine, other], CALLER, policy, "DE", owner_id="o-1").records == (mine,)
    assert choose_records([mine, other], CALLER, policy, "DE", owner_id="o-3").records == (other,)


def test_tie_break_all() -> None:
    a, b = rec("contact", "a", "0211 63553400"), rec("contact", "b", "+4921163553400")
    outcome = choose_records(
        [a, b], CALLER, MatchingPolicy(objects=("contact",), tie_break="all"), "DE"
    )
    assert ({r.id for r in outcome.records}, outcome.status) == ({"a", "b"}, "matched")


def test_a_recorded_match_rebuilds_the_same_records() -> None:
    record = CrmRecord(
        "contact",
        "K1",
        ("0211 63553400",),
        name="Erika Beispiel",
        owner_id="o-1",
        parent_id="A1",
        extra={"person_account": True},
    )
    outcome = choose_records([record], CALLER, MatchingPolicy(objects=("contact",)), "DE")
    ref = outcome.as_ref()
    again = MatchOutcome.from_ref(ref)
    assert again.status == "matched"
    [rebuilt] = again.records
    assert (rebuilt.id, rebuilt.parent_id, rebuilt.owner_id, rebuilt.name) == (
        "K1",
        "A1",
        "o-1",
        "Erika Beispiel",
    )
    assert rebuilt.extra == {"person_account": True}
    # What operators see in `sipgate-crm status` carries no names.
    assert MatchOutcome.summary(ref) == {
        "status": "matched",
        "records": [{"type": "contact", "id": "K1"}],
    }
