"""The adapter kit: everything an adapter may use, in one public namespace.

Third-party adapters import from here only; the modules behind it are private. The list is
pinned by a test, so nothing leaves it by accident.
"""

from __future__ import annotations

from connector.adapters.base import (
    Adapter,
    AdapterError,
    CheckResult,
    CrmRecord,
    DeliveryJob,
    Journal,
    Memo,
    MemoryMemo,
    PermanentError,
    RetryableError,
    TargetParked,
    TaskSpec,
    WriteResult,
)
from connector.adapters.registry import (
    ENTRY_POINT_GROUP,
    AdapterNotFound,
    adapter_class,
    available_adapters,
    build_adapter,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Adapter",
    "AdapterError",
    "AdapterNotFound",
    "CheckResult",
    "CrmRecord",
    "DeliveryJob",
    "Journal",
    "Memo",
    "MemoryMemo",
    "PermanentError",
    "RetryableError",
    "TargetParked",
    "TaskSpec",
    "WriteResult",
    "adapter_class",
    "available_adapters",
    "build_adapter",
]
