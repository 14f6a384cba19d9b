"""The org's Task Status and Priority values, read once per adapter instance and cached.

Call Tasks get the first closed ``TaskStatus``, follow-ups the default open one; the
``TaskPriority`` values stand for low/normal/high (normal: the default, high: the first high
priority value, low: the last of the others).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from connector.adapters.base import PermanentError
from connector.adapters.salesforce.client import _SalesforceApi
from connector.adapters.salesforce.records import _TaskValues


class _OrgTaskValues(_SalesforceApi):
    """`_task_statuses` and `_task_priorities`: two queries, each on first use only."""

    def __init__(
        self,
        name: str,
        options: Mapping[str, Any],
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(name, options, session)
        self._task_values: _TaskValues | None = None
        self._priorities: Mapping[str, str] | None = None

    def _task_statuses(self) -> _TaskValues:
        with self._lock:
            if self._task_values is None:
                rows = self._query(
                    "SELECT ApiName, MasterLabel, IsClosed, IsDefault, SortOrder FROM TaskStatus "
                    "ORDER BY SortOrder",
                    "TaskStatus lookup",
                )
                closed = [r for r in rows if r.get("IsClosed")]
                open_ = [r for r in rows if not r.get("IsClosed")]
                if not closed or not open_:
                    raise PermanentError(
                        "The org's Task Status picklist needs a closed and an open value."
                    )
                default = next((r for r in open_ if r.get("IsDefault")), open_[0])
                self._task_values = _TaskValues(
                    _picklist_value(closed[0]), _picklist_value(default)
                )
            return self._task_values

    def _task_priorities(self) -> Mapping[str, str]:
        with self._lock:
            if self._priorities is None:
                rows = self._query(
                    "SELECT ApiName, MasterLabel, IsHighPriority, IsDefault, SortOrder "
                    "FROM TaskPriority ORDER BY SortOrder",
                    "TaskPriority lookup",
                )
                if not rows:
                    raise PermanentError("The org has no Task Priority values.")
                normal = next((r for r in rows if r.get("IsDefault")), rows[len(rows) // 2])
                high = next((r for r in rows if r.get("IsHighPriority")), rows[0])
                lower = [r for r in rows if r is not normal and r is not high]
                low = lower[-1] if lower else normal
                self._priorities = {
                    "low": _picklist_value(low),
                    "normal": _picklist_value(normal),
                    "high": _picklist_value(high),
                }
            return self._priorities


def _picklist_value(row: Mapping[str, Any]) -> str:
    """The value stored in Task.Status/Priority for a TaskStatus/TaskPriority row."""
    return str(row.get("ApiName") or row.get("MasterLabel") or "")
