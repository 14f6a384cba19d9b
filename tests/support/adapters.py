"""Adapters for tests: a scripted one for the pipeline, a slow one for crash tests."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from marshmallow import fields

from connector.adapters import (
    Adapter,
    AdapterError,
    CheckResult,
    DeliveryJob,
    Journal,
    WriteResult,
)
from connector.adapters.database import DatabaseAdapter, DatabaseOptions


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


class SlowDatabaseOptions(DatabaseOptions):
    """Database options plus a marker file: the first write after creating it hangs."""

    hang_marker = fields.String(required=True)
    hang_seconds = fields.Float(load_default=60.0)


class SlowDatabaseAdapter(DatabaseAdapter):
    """The database target that, the first time only, hangs *after* committing its write.

    A worker killed during that hang leaves the hardest case: the target has the call, the ledger
    does not know it yet.
    """

    type_name = "tests.support.adapters:SlowDatabaseAdapter"
    config_schema = SlowDatabaseOptions

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, options)

    def write(self, job: DeliveryJob, journal: Journal) -> WriteResult:
        result = super().write(job, journal)
        marker = Path(self.options["hang_marker"])
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            time.sleep(self.options["hang_seconds"])
        return result
