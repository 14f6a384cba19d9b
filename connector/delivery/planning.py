"""Turn a call into one target's `DeliveryJob`: match → owners → render → tasks → long text.

Everything here is CRM-neutral: the adapter contributes search, record creation and owner lookup
primitives plus its field limits; the policy (mapping file and target entry) says what to do.
The outcome of the match is kept in the delivery's journal, so a retried delivery logs the call
on the same records as the first attempt.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from connector.adapters.base import Adapter, CrmRecord, DeliveryJob, Journal, TaskSpec
from connector.config.policy import DeliveryPolicy
from connector.delivery.matching import (
    AMBIGUOUS,
    CREATED,
    PINNED,
    UNMATCHED,
    MatchOutcome,
    choose_records,
)
from connector.delivery.review import Review, pinned_record, review_decision
from connector.payload import CallReport
from connector.phone import PhoneNumber, parse_sipgate
from connector.render.context import build_context
from connector.render.sandbox import render_fields
from connector.text import truncate_to

__all__ = ["Plan", "add_business_days", "plan_delivery", "resolve_owner"]

CUT_MARKER = " […]"


@dataclass(frozen=True)
class Plan:
    """The job for the adapter, or the reason why there is nothing to write.

    `review` is set when the call is held for a person (``review`` policies) instead.
    """

    job: DeliveryJob | None
    match: MatchOutcome | None
    skip_reason: str | None = None
    review: Review | None = None


def add_business_days(start: date, days: int) -> date:
    """`start` plus `days` working days (Monday to Friday); 0 days on a weekend is the Monday."""
    current = start
    while current.weekday() >= 5:
        current += timedelta(days=1)
    added = 0
    while added < days:
        current += timedelta(days=1)
        if current.weekday() < 5:
            added += 1
    return current


def resolve_owner(report: CallReport, policy: DeliveryPolicy, adapter: Adapter) -> str | None:
    """The CRM owner for the call: the first sipgate user with a mapping, else the fallback.

    Mapped values containing ``@`` are e-mail addresses the adapter resolves to an owner id.
    """

    def resolve(value: str | None) -> str | None:
        if not value:
            return None
        return adapter.resolve_owner(value) if "@" in value else value

    users = policy.owners.users
    for user in report.users:
        for key in (user.full_user_id, user.user_id):
            if key and key in users:
                owner = resolve(users[key])
                if owner:
                    return owner
    return resolve(policy.owners.fallback)


def _context(
    report: CallReport, policy: DeliveryPolicy, record: CrmRecord | None
) -> dict[str, Any]:
    """The template context of `report`, with `record` (the first match) as ``record``."""
    return build_context(
        report,
        timezone=policy.defaults.timezone,
        language=policy.language,
        default_region=policy.defaults.region,
        extra={
            "record": None
            if record is None
            else {"id": record.id, "type": record.object_type, "name": record.name}
        },
    )


def _match(
    caller: PhoneNumber | None,
    policy: DeliveryPolicy,
    adapter: Adapter,
    journal: Journal,
    owner_id: str | None,
    assumed: list[CrmRecord] | None,
) -> tuple[MatchOutcome, Review | None]:
    recorded = journal.get("match")
    if recorded is not None:  # a retry (or a person's assignment) decides the records
        return MatchOutcome.from_ref(recorded), None
    if caller is None or not policy.matching.objects:
        return MatchOutcome((), UNMATCHED), None
    pinned = pinned_record(adapter.memo, caller) if assumed is None else None
    if pinned is not None:
        return MatchOutcome((pinned,), PINNED, 1), None
    hits = (
        assumed if assumed is not None else adapter.search_by_phone(caller, policy.matching.objects)
    )
    region = policy.defaults.region
    matching = policy.matching
    if matching.tie_break == "review":
        every = choose_records(
            hits, caller, dataclasses.replace(matching, tie_break="all"), region, owner_id
        )
        if len(every.records) > 1:
            held, matching = review_decision(
                matching, journal, AMBIGUOUS, list(every.records), caller
            )
            if held is not None:
                return MatchOutcome(every.records, AMBIGUOUS, every.candidates), held
    return choose_records(hits, caller, matching, region, owner_id), None


def plan_delivery(
    report: CallReport,
    policy: DeliveryPolicy,
    adapter: Adapter,
    journal: Journal,
    *,
    assumed_hits: list[CrmRecord] | None = None,
    create: bool = True,
) -> Plan:
    """Everything the adapter needs to write this call, or why the call is skipped.

    `assumed_hits` replaces the CRM search (dry-run ``--offline``); with ``create=False`` no
    record is created for an unknown caller (dry-run), the plan says it would be.
    """
    caller = parse_sipgate(report.remote_number)
    owner_id = resolve_owner(report, policy, adapter)
    outcome = MatchOutcome((), UNMATCHED)
    if adapter.searchable_objects:
        outcome, held = _match(caller, policy, adapter, journal, owner_id, assumed_hits)
        if held is not None:
            return Plan(None, outcome, "held for review: ambiguous", held)
        if outcome.status == UNMATCHED:
            rule = policy.matching.on_no_match
            if rule == "review" and caller is not None:
                held, fallback = review_decision(policy.matching, journal, UNMATCHED, [], caller)
                if held is not None:
                    return Plan(None, outcome, "held for review: no match", held)
                rule = fallback.on_no_match
            elif rule == "review":
                rule = policy.matching.fallback_on_no_match  # no number: nothing to review
            if rule == "skip":
                # A withheld or empty number matches no record either: skip means skip.
                reason = "no matching record" if caller is not None else "no caller number to match"
                return Plan(None, outcome, reason)
            # Without a number there is nothing to create a record for: logged unmatched.
            if caller is not None and rule in ("create_contact", "create_lead"):
                object_type = rule.removeprefix("create_")
                if object_type not in adapter.creatable_objects:
                    return Plan(None, outcome, f"this target cannot create {object_type} records")
                fields = render_fields(policy.new_record, _context(report, policy, None))
                if create:
                    record = adapter.create_record(object_type, caller, fields, journal)
                else:
                    record = CrmRecord(object_type, "(new)", (caller.e164,))
                outcome = MatchOutcome((record,), CREATED)
        if journal.get("match") is None:  # a recorded one (e.g. a person's choice) stays as is
            journal.record("match", outcome.as_ref())

    context = _context(report, policy, outcome.records[0] if outcome.records else None)
    fields, overflow = _render_call_fields(context, policy, adapter)
    tasks = _tasks(context, report, policy, owner_id, adapter)
    job = DeliveryJob(
        report=report,
        fields=fields,
        matches=outcome.records,
        tasks=tasks,
        owner_id=owner_id,
        overflow=overflow,
        remote=caller,
        options={"match_status": outcome.status, "language": policy.language},
    )
    return Plan(job, outcome if adapter.searchable_objects else None)


def _limits(policy: DeliveryPolicy, adapter: Adapter) -> dict[str, int]:
    limits = dict(adapter.field_limits)
    for name, limit in policy.limits.items():
        limits[name] = min(limit, limits.get(name, limit))
    return limits


def _render_call_fields(
    context: Mapping[str, Any], policy: DeliveryPolicy, adapter: Adapter
) -> tuple[dict[str, str], str]:
    """Render the call fields by transcript mode; what does not fit goes to the overflow."""
    transcript = str(context.get("transcript") or "")
    limits = _limits(policy, adapter)
    without = {**context, "transcript": "", "transcript_chunks": []}
    mode = policy.transcript
    if mode != "full" or not transcript:
        fields = render_fields(policy.fields, without)
        overflow = transcript if mode == "summary" and adapter.supports_overflow else ""
        return _cut(fields, limits), overflow
    fields = render_fields(policy.fields, context)
    plain = render_fields(policy.fields, without)
    # Only a field the transcript made too long moves it; the templates say which fields hold it.
    too_long = [
        f for f, v in fields.items() if f in limits and len(v) > limits[f] and v != plain[f]
    ]
    if too_long and adapter.supports_overflow:
        # The transcript does not fit the record: the record keeps everything else, the
        # overflow record (a note) takes the whole transcript.
        return _cut(plain, limits), transcript
    return _cut(fields, limits), ""


def _cut(fields: dict[str, str], limits: Mapping[str, int]) -> dict[str, str]:
    return {
        name: truncate_to(value, limits[name], CUT_MARKER) if name in limits else value
        for name, value in fields.items()
    }


def _tasks(
    context: Mapping[str, Any],
    report: CallReport,
    policy: DeliveryPolicy,
    owner_id: str | None,
    adapter: Adapter,
) -> tuple[TaskSpec, ...]:
    rule = policy.tasks
    if not rule.enabled or rule.subject is None or rule.body is None:
        return ()
    call_date: date = context["call"]["date"]
    due = add_business_days(call_date, rule.due_in_business_days)
    if rule.owner == "call_owner":
        task_owner = owner_id
    elif rule.owner == "fallback":
        fallback = policy.owners.fallback
        task_owner = adapter.resolve_owner(fallback) if fallback and "@" in fallback else fallback
    else:
        task_owner = None
    specs: list[TaskSpec] = []
    for item in report.action_items:
        item_context = {**context, "item": item.content}
        rendered = render_fields({"subject": rule.subject, "body": rule.body}, item_context)
        specs.append(
            TaskSpec(
                subject=rendered["subject"],
                body=rendered["body"],
                due=due,
                priority=rule.priority,
                owner_id=task_owner,
            )
        )
    return tuple(specs)
