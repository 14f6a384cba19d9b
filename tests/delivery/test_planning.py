"""From call to job: match, owners, rendering with limits and transcript modes, tasks."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector.adapters import CrmRecord, Journal
from connector.adapters.hubspot import HubSpotAdapter
from connector.config.policy import Defaults, DeliveryPolicy, TargetAbilities, load_policy
from connector.delivery.planning import add_business_days, plan_delivery
from connector.payload import ActionItem, parse_report
from connector.problems import ConfigProblem
from tests.support.adapters import FakeCrm


def policy(base: Path = Path("/nonexistent"), **mapping: Any) -> DeliveryPolicy:
    problems: list[ConfigProblem] = []
    loaded = load_policy(
        mapping,
        "targets[0]",
        "config.yaml",
        base,
        Defaults(),
        TargetAbilities(("contact", "lead", "company"), ("contact", "lead")),
        problems,
        HubSpotAdapter.default_mapping,
    )
    assert loaded is not None, problems
    return loaded


@pytest.fixture
def report(example_v1: dict[str, Any]) -> Any:
    return parse_report(example_v1)


def contact(rid: str = "K1", phone: str = "0211 63553400", **kw: Any) -> CrmRecord:
    return CrmRecord("contact", rid, (phone,), name="Erika Beispiel", **kw)


def test_a_matched_call(report: Any) -> None:
    crm = FakeCrm([contact(), contact("AT", "+43 211 63553400")])
    journal = Journal()
    plan = plan_delivery(report, policy(), crm, journal)
    assert plan.job is not None and plan.match is not None
    assert [r.id for r in plan.job.matches] == ["K1"]
    assert plan.match.status == "matched" and plan.match.rejected == 1
    assert plan.job.fields["hs_call_title"] == "Invoice inquiry and plan change"
    assert "<li>The customer wants to change their plan.</li>" in plan.job.fields["hs_call_body"]
    assert [(r["type"], r["id"]) for r in journal.get("match")["records"]] == [("contact", "K1")]


def test_a_retry_reuses_the_first_attempts_match(report: Any) -> None:
    crm = FakeCrm([contact(parent_id="A1", owner_id="o-1")])
    journal = Journal()
    first = plan_delivery(report, policy(), crm, journal)
    crm.records = [contact("K2")]  # the CRM changed meanwhile
    again = plan_delivery(report, policy(), crm, Journal(journal.as_dict()))
    assert again.job is not None and first.job is not None

    def key(r: CrmRecord) -> tuple[Any, ...]:
        return (r.object_type, r.id, r.parent_id, r.owner_id, r.name)

    # The same records, with their company and owner.
    assert [key(r) for r in again.job.matches] == [key(r) for r in first.job.matches]
    assert again.job.matches[0].parent_id == "A1"
    assert again.job.fields == first.job.fields  # templates see the same record
    assert crm.searches == 1


@pytest.mark.parametrize(
    ("rule", "skipped", "status"),
    [
        ("skip", "no matching record", None),
        ("log_unmatched", None, "unmatched"),
        ("create_contact", None, "created"),
    ],
)
def test_no_match_rules(report: Any, rule: str, skipped: str | None, status: str | None) -> None:
    crm = FakeCrm([])
    plan = plan_delivery(report, policy(matching={"on_no_match": rule}), crm, Journal())
    assert plan.skip_reason == skipped
    if status:
        assert plan.job is not None and plan.match is not None and plan.match.status == status
    if rule == "create_contact":
        assert [r.object_type for r in crm.created] == ["contact"]
        assert "Call with 0211 63553400" in crm.created[0].name  # the new_record template


def test_creating_twice_for_one_delivery_creates_once(report: Any) -> None:
    crm = FakeCrm([])
    journal = Journal()
    rules = policy(matching={"on_no_match": "create_contact"})
    plan_delivery(report, rules, crm, journal)
    journal = Journal({k: v for k, v in journal.as_dict().items() if k != "match"})
    plan_delivery(report, rules, crm, journal)
    assert len(crm.created) == 1


def test_owner_by_full_user_id_email_and_fallback(report: Any) -> None:
    crm = FakeCrm([contact()])
    by_id = policy(owners={"users": {"1234567w0": "owner-7"}})
    assert plan_delivery(report, by_id, crm, Journal()).job.owner_id == "owner-7"  # type: ignore[union-attr]
    by_mail = policy(owners={"users": {"w0": "ops@example.invalid"}})
    assert plan_delivery(report, by_mail, crm, Journal()).job.owner_id == "owner-ops"  # type: ignore[union-attr]
    fallback = policy(owners={"users": {"someone-else": "x"}, "fallback": "owner-0"})
    assert plan_delivery(report, fallback, crm, Journal()).job.owner_id == "owner-0"  # type: ignore[union-attr]


def test_tasks_from_action_items(report: Any) -> None:
    crm = FakeCrm([contact()])
    rules = policy(
        owners={"users": {"w0": "owner-7"}}, tasks={"priority": "high", "due_in_business_days": 3}
    )
    job = plan_delivery(report, rules, crm, Journal()).job
    assert job is not None
    assert [t.subject for t in job.tasks] == [a.content for a in report.action_items]
    # The call was on Wednesday 2026-04-08 (Berlin): three business days later is Monday.
    assert {t.due for t in job.tasks} == {date(2026, 4, 13)}
    assert {t.priority for t in job.tasks} == {"high"} and {t.owner_id for t in job.tasks} == {
        "owner-7"
    }
    assert plan_delivery(report, policy(tasks={"enabled": False}), crm, Journal()).job.tasks == ()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        (date(2026, 4, 10), 1, date(2026, 4, 13)),
        (date(2026, 4, 11), 0, date(2026, 4, 13)),
        (date(2026, 4, 8), 0, date(2026, 4, 8)),
        (date(2026, 4, 8), 5, date(2026, 4, 15)),
    ],
)
def test_business_days(start: date, days: int, due: date) -> None:
    assert add_business_days(start, days) == due


def test_transcript_summary_mode_puts_the_transcript_in_the_overflow(report: Any) -> None:
    job = plan_delivery(report, policy(transcript="summary"), FakeCrm([contact()]), Journal()).job
    assert job is not None
    assert "customer number" not in job.fields["hs_call_body"]
    assert job.overflow.startswith("Caller: Good day")


def test_transcript_off_mode_writes_it_nowhere(report: Any) -> None:
    job = plan_delivery(report, policy(transcript="off"), FakeCrm([contact()]), Journal()).job
    assert (
        job is not None
        and job.overflow == ""
        and "customer number" not in job.fields["hs_call_body"]
    )


def test_transcript_full_mode_keeps_it_in_the_body_when_it_fits(report: Any) -> None:
    crm = FakeCrm([contact()], limits={"hs_call_body": 65536})
    job = plan_delivery(report, policy(transcript="full"), crm, Journal()).job
    assert (
        job is not None and "customer number" in job.fields["hs_call_body"] and job.overflow == ""
    )


def test_a_transcript_too_long_for_the_record_moves_to_the_overflow(report: Any) -> None:
    long = dataclasses.replace(report, transcript="Caller: " + "blah " * 40000)
    crm = FakeCrm([contact()], limits={"hs_call_body": 65536})
    job = plan_delivery(long, policy(transcript="full"), crm, Journal()).job
    assert job is not None
    assert len(job.fields["hs_call_body"]) <= 65536 and "blah" not in job.fields["hs_call_body"]
    assert job.overflow == long.transcript
    crm.supports_overflow = False  # type: ignore[misc]
    cut = plan_delivery(long, policy(transcript="full"), crm, Journal()).job
    assert cut is not None and len(cut.fields["hs_call_body"]) == 65536
    assert cut.fields["hs_call_body"].endswith(" […]") and cut.overflow == ""


def test_mapping_limits_are_lowered_never_raised(report: Any) -> None:
    crm = FakeCrm([contact()], limits={"hs_call_title": 255})
    job = plan_delivery(report, policy(limits={"hs_call_title": 10}), crm, Journal()).job
    assert job is not None and job.fields["hs_call_title"] == "Invoic […]"
    job = plan_delivery(report, policy(limits={"hs_call_title": 9999}), crm, Journal()).job
    assert job is not None and len(job.fields["hs_call_title"]) <= 255


def test_forty_action_items_make_forty_tasks(report: Any) -> None:
    many = dataclasses.replace(
        report, action_items=tuple(ActionItem(f"Follow-up {i}") for i in range(40))
    )
    job = plan_delivery(many, policy(), FakeCrm([contact()]), Journal()).job
    assert job is not None and len(job.tasks) == 40


def test_anonymous_caller_is_logged_unmatched_without_a_search(report: Any) -> None:
    crm = FakeCrm([contact()])
    anonymous = dataclasses.replace(report, from_number="anonymous")
    plan = plan_delivery(
        anonymous, policy(matching={"on_no_match": "create_contact"}), crm, Journal()
    )
    assert (
        plan.job is not None and plan.job.matches == () and crm.searches == 0 and crm.created == []
    )


@pytest.mark.parametrize("number", ["anonymous", "", "unknown"])
def test_skip_also_holds_for_a_withheld_or_empty_number(report: Any, number: str) -> None:
    crm = FakeCrm([contact()])
    withheld = dataclasses.replace(report, from_number=number)
    plan = plan_delivery(withheld, policy(matching={"on_no_match": "skip"}), crm, Journal())
    assert plan.job is None and plan.skip_reason == "no caller number to match"
    assert crm.searches == 0 and crm.created == []


def test_a_field_too_long_without_the_transcript_leaves_the_transcript_in_place(
    report: Any,
) -> None:
    long_headline = dataclasses.replace(report, headline="Invoice " * 100)
    crm = FakeCrm([contact()], limits={"hs_call_title": 255, "hs_call_body": 65536})
    job = plan_delivery(long_headline, policy(transcript="full"), crm, Journal()).job
    assert job is not None and job.overflow == ""
    assert len(job.fields["hs_call_title"]) == 255 and job.fields["hs_call_title"].endswith(" […]")
    assert "customer number" in job.fields["hs_call_body"]


def test_transcript_field_is_no_key_of_a_mapping(tmp_path: Path) -> None:
    problems: list[ConfigProblem] = []
    (tmp_path / "m.yaml").write_text("transcript: full\ntranscript_field: hs_call_body\n")
    loaded = load_policy(
        {"mapping": "m.yaml"},
        "targets[0]",
        "c.yaml",
        tmp_path,
        Defaults(),
        TargetAbilities(("contact",)),
        problems,
    )
    assert loaded is None
    assert [(p.path, p.message) for p in problems] == [
        ("transcript_field", "Unknown key (a typo?).")
    ]


def test_the_pipeline_variables_reach_the_templates(report: Any, tmp_path: Path) -> None:
    # connector.render.context.PIPELINE_VARIABLES documents these two names for the README.
    shipped = HubSpotAdapter.default_mapping
    assert shipped is not None
    mapping = yaml.safe_load(shipped.read_text())
    mapping["fields"]["hs_call_title"] = "{{ record.type if record }} {{ record.id if record }}"
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(mapping))
    rules = policy(tmp_path, mapping="mine.yaml", tasks={"subject": "Task: {{ item }}"})
    job = plan_delivery(report, rules, FakeCrm([contact()]), Journal()).job
    assert job is not None
    assert job.fields["hs_call_title"] == "contact K1"
    assert [t.subject for t in job.tasks] == [f"Task: {a.content}" for a in report.action_items]
    unmatched = plan_delivery(report, rules, FakeCrm([]), Journal()).job
    assert unmatched is not None and unmatched.fields["hs_call_title"] == ""
