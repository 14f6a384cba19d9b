"""The ``vcon`` target: every call as a vCon (draft-ietf-vcon-vcon-core), an archive in an open
standard for tools that read vCon.

With ``folder`` each call is one ``<call_id>.vcon.json`` file, written atomically; with ``url``
it is one row of a SQL table (``table``, default ``sipgate_vcons``). A repeated delivery replaces
the call's vCon, so each call is kept once. The mapping's rendered fields, when there are any,
travel in an attachment of type ``sipgate_fields``. ``retention_days`` and ``sipgate-crm purge``
erase vCons as they do database rows. The target cannot search for callers: it has no records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from marshmallow import validate
from sqlalchemy.exc import SQLAlchemyError

from connector.adapters import (
    Adapter,
    CheckResult,
    DeliveryJob,
    Journal,
    RetryableError,
    WriteResult,
    option,
)
from connector.adapters.vcon.stores import FolderStore, TableStore, VconStore
from connector.vcon.write import vcon_document

__all__ = ["VconAdapter", "VconOptions"]


@dataclass(frozen=True)
class VconOptions:
    """Options of a ``vcon`` target: exactly one of `folder` and `url`."""

    # option() returns a dataclass field; ruff cannot tell for a Path annotation.
    folder: Path | None = option(
        None, help="Folder for one <call_id>.vcon.json file per call (relative: to the config)."
    )
    url: str | None = option(None, help="SQLAlchemy URL of a database holding the vCons.")
    table: str = option(
        "sipgate_vcons",
        validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,62}$"),
        help="Table name (with url).",
    )
    store_transcript: bool = option(True, help="Keep the transcript in the vCon too.")
    retention_days: int | None = option(
        None,
        validate=validate.Range(min=1),
        help="Delete vCons of calls that started more than this many days ago.",
    )

    def __post_init__(self) -> None:
        if (self.folder is None) == (self.url is None):
            raise ValueError("Set exactly one of folder (files) and url (a SQL table).")


def _store(options: VconOptions) -> VconStore:
    if options.folder is not None:
        return FolderStore(options.folder)
    assert options.url is not None
    return TableStore(options.url, options.table)


class VconAdapter(Adapter):
    """Writes each call as one vCon; idempotent per call id (a rewrite replaces it)."""

    type_name = "vcon"
    options_type = VconOptions
    options: VconOptions

    def __init__(self, name: str, options: VconOptions, store: VconStore | None = None) -> None:
        super().__init__(name, options)
        self.store = store or _store(options)

    def check(self) -> list[CheckResult]:
        """The folder or table can be written (it is created when missing)."""
        try:
            return [CheckResult(True, self.store.ready())]
        except (OSError, SQLAlchemyError) as exc:
            return [CheckResult(False, f"Cannot write vCons: {type(exc).__name__}: {exc}")]

    def document(self, job: DeliveryJob) -> dict[str, Any]:
        """The vCon written for `job`: the report's (without the transcript unless
        ``store_transcript``), plus the rendered fields if any."""
        report = job.report
        if not self.options.store_transcript:
            report = replace(report, transcript="", transcript_chunks=())
        document = vcon_document(report)
        if job.fields:
            document["attachments"].append(
                {
                    "type": "sipgate_fields",
                    "encoding": "json",
                    "mediatype": "application/json",
                    "body": json.dumps({k: str(v) for k, v in job.fields.items()}),
                }
            )
        return document

    def write(self, job: DeliveryJob, journal: Journal) -> WriteResult:
        """Keep the call's vCon, replacing what an earlier attempt wrote."""
        report = job.report
        try:
            self.store.put(report.call_id, report.start_time, self.document(job))
        except OSError as exc:
            raise RetryableError(f"Cannot write the vCon file: {type(exc).__name__}") from exc
        return WriteResult(refs=self.store.where(report.call_id))

    def describe_write(self, job: DeliveryJob) -> list[dict[str, Any]]:
        """The vCon that `write` would keep, and where."""
        return [
            {
                "op": "write_vcon",
                "target": self.name,
                **self.store.where(job.report.call_id),
                "vcon": self.document(job),
            }
        ]

    def count_calls(self, call_id: str) -> int:
        """How many vCons are kept for `call_id` (0 or 1 if all is well)."""
        return self.store.count(call_id)

    def erase_call(self, call_id: str) -> int:
        """Delete the vCon of `call_id`; how many were deleted."""
        return self.store.erase(call_id)

    def erase_before(self, before: datetime) -> int:
        """Delete the vCons of calls that started before `before`; how many."""
        return self.store.erase_before(before)

    def remove_expired(self, now: datetime) -> int:
        """Delete vCons older than ``retention_days`` (none without it); how many."""
        days = self.options.retention_days
        return self.erase_before(now - timedelta(days=days)) if days else 0

    def close(self) -> None:
        """Release the database connections (a folder holds none)."""
        self.store.close()
