"""The org's Task Status and Priority values, read once per adapter instance and cached.

Call Tasks get the first closed ``TaskStatus``, follow-ups the default open one; the
``TaskPriority`` values stand for low/normal/high (normal: the default, high: the first high
priority value, low: the last of the others).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from connector.adapters import PermanentError
from connector.adapters.salesforce.client import SalesforceClient
from connector.adapters.salesforce.records import _TaskValues


class OrgTaskValues:
    """`statuses` and `priorities` of the org behind `client`: two queries, each on first use
    only."""

    def __init__(self, client: SalesforceClient) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._task_values: _TaskValues | None = None
        self._priorities: Mapping[str, str] | None = None

    def statuses(self) -> _TaskValues:
        """The closed Status of call Tasks and the default open one of follow-ups."""
        with self._lock:
            if self._task_values is None:
                rows = self.client.query(
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

    def priorities(self) -> Mapping[str, str]:
        """The org's Priority values for ``low``, ``normal`` and ``high``."""
        with self._lock:
            if self._priorities is None:
                rows = self.client.query(
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
