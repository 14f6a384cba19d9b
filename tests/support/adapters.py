"""Adapters for tests: a scripted one for the pipeline, a slow one for crash tests."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connector.adapters import (
    Adapter,
    AdapterError,
    CheckResult,
    CrmRecord,
    DeliveryJob,
    Journal,
    RetryableError,
    WriteResult,
    name_words,
)
from connector.adapters.database import DatabaseAdapter, DatabaseOptions
from connector.phone import PhoneNumber


class ScriptedAdapter(Adapter):
    """Raises the scripted errors in order, then succeeds; records every call id it wrote."""

    type_name = "scripted"

    def __init__(self, script: list[AdapterError | Exception] | None = None) -> None:
        super().__init__("scripted", {})
        self.script = list(script or [])
        self.written: list[str] = []
        self.journals: list[dict[str, Any]] = []

    def check(self) -> list[CheckResult]:
        return [CheckResult(True, "scripted")]

    def write(self, job: DeliveryJob, journal: Journal) -> WriteResult:
        self.journals.append(journal.as_dict())
        if journal.get("record") is None:
            journal.record("record", f"rec-{job.report.call_id}")
        if self.script:
            raise self.script.pop(0)
        self.written.append(job.report.call_id)
        return WriteResult(refs={"record": journal.get("record")})


@dataclass(frozen=True, kw_only=True)
class SlowDatabaseOptions(DatabaseOptions):
    """Database options plus a marker file: the first write after creating it hangs."""

    hang_marker: str
    hang_seconds: float = 60.0


class SlowDatabaseAdapter(DatabaseAdapter):
    """The database target that, the first time only, hangs *after* committing its write.

    A worker killed during that hang leaves the hardest case: the target has the call, the ledger
    does not know it yet.
    """

    type_name = "tests.support.adapters:SlowDatabaseAdapter"
    options_type = SlowDatabaseOptions
    options: SlowDatabaseOptions

    def write(self, job: DeliveryJob, journal: Journal) -> WriteResult:
        result = super().write(job, journal)
        marker = Path(self.options.hang_marker)
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            time.sleep(self.options.hang_seconds)
        return result


@dataclass(frozen=True, kw_only=True)
class PacedDatabaseOptions(DatabaseOptions):
    """Database options plus how long every write takes."""

    write_seconds: float = 0.2
    fail_first: bool = False


class PacedDatabaseAdapter(DatabaseAdapter):
    """The database target, every write taking `write_seconds`; with `fail_first`, each call's
    first attempt fails (retryable) and the retry records when it started (``retry_started``,
    epoch seconds) in the journal, so tests and benchmarks can measure retries against their due
    time."""

    type_name = "tests.support.adapters:PacedDatabaseAdapter"
    options_type = PacedDatabaseOptions
    options: PacedDatabaseOptions

    def write(self, job: DeliveryJob, journal: Journal) -> WriteResult:
        if self.options.fail_first:
            if journal.get("failed_once") is None:
                journal.record("failed_once", time.time())
                raise RetryableError("the first attempt of every call fails")
            if journal.get("retry_started") is None:
                journal.record("retry_started", time.time())
        time.sleep(self.options.write_seconds)
        return super().write(job, journal)


class FakeCrm(Adapter):
    """An in-memory CRM with a deliberately sloppy phone search, like real CRMs.

    `search_by_phone` returns every record whose stored digits end with the caller's national
    significant number — so numbers of other countries with the same NSN come back too, and the
    matching policy must reject them.
    """

    type_name = "fakecrm"
    searchable_objects = ("contact", "lead", "company")
    creatable_objects = ("contact", "lead")
    supports_overflow = True
    supports_name_search = True

    def __init__(
        self, records: list[CrmRecord] | None = None, limits: dict[str, int] | None = None
    ) -> None:
        super().__init__("fakecrm", {})
        self.records = list(records or [])
        self.searches = 0
        self.created: list[CrmRecord] = []
        self.owners = {"ops@example.invalid": "owner-ops"}
        self.field_limits = limits or {}  # type: ignore[misc]

    def check(self) -> list[CheckResult]:
        return [CheckResult(True, "fake")]

    def search_by_phone(self, number: PhoneNumber, object_types: Sequence[str]) -> list[CrmRecord]:
        self.searches += 1
        nsn = number.national_significant
        return [
            r
            for r in self.records
            if r.object_type in object_types
            and any("".join(c for c in p if c.isdigit()).endswith(nsn) for p in r.phones)
        ]

    def search_by_name(self, name: str, object_types: Sequence[str]) -> list[CrmRecord]:
        words = name_words(name)
        return [
            r
            for r in self.records
            if words
            and r.object_type in object_types
            and all(any(w.startswith(word) for w in name_words(r.name, 99)) for word in words)
        ]

    def create_record(
        self, object_type: str, number: PhoneNumber, fields: Mapping[str, Any], journal: Journal
    ) -> CrmRecord:
        existing = journal.get("created")
        if existing:
            return CrmRecord(object_type, existing, (number.e164,))
        record = CrmRecord(
            object_type, f"new-{len(self.created) + 1}", (number.e164,), name=str(fields)
        )
        self.created.append(record)
        self.records.append(record)
        journal.record("created", record.id)
        return record

    def resolve_owner(self, email: str) -> str | None:
        return self.owners.get(email)

    def write(self, job: DeliveryJob, journal: Journal) -> WriteResult:
        self.last_job = job
        return WriteResult(refs={"call": f"call-{job.report.call_id}"})
