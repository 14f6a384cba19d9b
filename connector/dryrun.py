"""``sipgate-crm dry-run``: what each target would do with a call, writing nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connector.adapters import (
    Adapter,
    AdapterError,
    CheckResult,
    CrmRecord,
    DeliveryJob,
    Journal,
    WriteResult,
    build_adapter,
)
from connector.config.sections import Config, TargetConfig
from connector.delivery.filters import skip_reason
from connector.delivery.planning import plan_delivery
from connector.payload import CallReport
from connector.phone import PhoneNumber, parse_sipgate

__all__ = ["DryRunError", "dry_run", "parse_assumption"]


class _Offline(Adapter):
    """Stands in for a target's adapter without reaching the CRM.

    Searches return the assumed records, owner e-mails stay unresolved (shown as such), and the
    real adapter is asked only to describe requests.
    """

    def __init__(self, real: Adapter, assumed: Sequence[CrmRecord]) -> None:
        super().__init__(real.name, real.options)
        self.real = real
        self.assumed = list(assumed)
        self.searchable_objects = real.searchable_objects  # type: ignore[misc]
        self.creatable_objects = real.creatable_objects  # type: ignore[misc]
        self.field_limits = real.field_limits  # type: ignore[misc]
        self.supports_overflow = real.supports_overflow  # type: ignore[misc]

    def check(self) -> list[CheckResult]:
        return [CheckResult(True, "offline")]

    def search_by_phone(self, number: PhoneNumber, object_types: Sequence[str]) -> list[CrmRecord]:
        return [r for r in self.assumed if r.object_type in object_types]

    def resolve_owner(self, email: str) -> str | None:
        return f"(owner with e-mail {email})"

    def write(self, job: DeliveryJob, journal: Journal) -> WriteResult:  # pragma: no cover
        raise AssertionError("a dry run never writes")


def parse_assumption(text: str, caller: PhoneNumber | None) -> CrmRecord:
    """``TYPE:ID[:NAME]`` (``contact:123:Erika Beispiel``) as a record with the caller's number."""
    object_type, _, rest = text.partition(":")
    record_id, _, name = rest.partition(":")
    if not object_type or not record_id:
        raise ValueError(f"--assume-match takes TYPE:ID[:NAME], not {text!r}")
    phones = (caller.e164,) if caller else ()
    return CrmRecord(object_type=object_type, id=record_id, phones=phones, name=name)


class DryRunError(Exception):
    """A target failed during the dry run; the message is one line that names it."""


def _describe_job(job: DeliveryJob) -> dict[str, Any]:
    """The planned job, CRM-neutral: what ``--offline`` shows instead of the CRM's requests."""
    return {
        "fields": dict(job.fields),
        "records": [{"type": r.object_type, "id": r.id, "name": r.name} for r in job.matches],
        "owner": job.owner_id,
        "tasks": [
            {
                "subject": t.subject,
                "body": t.body,
                "due": t.due.isoformat(),
                "priority": t.priority,
                "owner": t.owner_id,
            }
            for t in job.tasks
        ],
        "overflow_characters": len(job.overflow),
    }


def _plan(
    report: CallReport, target: TargetConfig, real: Adapter, offline: bool, assumed: list[CrmRecord]
) -> dict[str, Any]:
    policy = target.policy
    reason = skip_reason(report, policy.filters, policy.defaults.region)
    if reason is not None:
        return {"skipped": reason}
    caller = parse_sipgate(report.remote_number)
    adapter: Adapter = _Offline(real, assumed) if offline else real
    out: dict[str, Any] = {}
    if real.searchable_objects and caller is not None:
        out["search"] = real.describe_search(caller, policy.matching.objects)
    plan = plan_delivery(report, policy, adapter, Journal(), create=False)
    if plan.match is not None:
        out["match"] = plan.match.as_ref()
    if plan.job is None:
        out["skipped"] = plan.skip_reason
    elif offline:
        # The CRM's requests may need what only the CRM knows (Salesforce's Task statuses), and
        # offline owners are unresolved: the planned job is shown, no adapter sees it.
        out["job"] = _describe_job(plan.job)
    else:
        out["operations"] = real.describe_write(plan.job)
    return out


def _one(
    report: CallReport, target: TargetConfig, offline: bool, assumptions: Sequence[str]
) -> dict[str, Any]:
    caller = parse_sipgate(report.remote_number)
    assumed = [parse_assumption(a, caller) for a in assumptions]
    try:
        real = build_adapter(target)
    except Exception as exc:
        raise DryRunError(f"target {target.name!r}: {_one_line(exc)}") from exc
    try:
        return _plan(report, target, real, offline, assumed)
    except Exception as exc:
        # An adapter error (an unreachable CRM, refused credentials) or a bug: one line.
        raise DryRunError(f"target {target.name!r}: {_one_line(exc)}") from exc
    finally:
        real.close()


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or "no message"
    return text if isinstance(exc, AdapterError) else f"{type(exc).__name__}: {text}"


def dry_run(
    config: Config,
    report: CallReport,
    targets: Sequence[str] = (),
    *,
    offline: bool = False,
    assumptions: Sequence[str] = (),
) -> Mapping[str, Any]:
    """The searches, matches and operations every chosen target would perform for `report`.

    With `offline` no CRM is contacted: searches find only the `assumptions`, owner e-mails stay
    unresolved, and each target shows its planned ``job`` instead of the CRM requests.
    `DryRunError` (one line naming the target) when a target fails.
    """
    chosen = [t for t in config.targets if not targets or t.name in targets]
    return {
        "call_id": report.call_id,
        "targets": {t.name: _one(report, t, offline, assumptions) for t in chosen},
    }
