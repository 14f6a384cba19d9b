"""The one public namespace of the adapter kit: pinned, importable, documented."""

from __future__ import annotations

import inspect

import connector.adapters as kit

EXPECTED = [
    "ENTRY_POINT_GROUP",
    "ActionItem",
    "Adapter",
    "AdapterError",
    "AdapterNotFound",
    "Budget",
    "CallReport",
    "CallerClaims",
    "Channel",
    "CheckResult",
    "CrmRecord",
    "DeliveryJob",
    "Failure",
    "HttpClient",
    "HttpPolicy",
    "IdString",
    "Journal",
    "Memo",
    "MemoryMemo",
    "OutcomeUnknown",
    "OwnerCache",
    "PermanentError",
    "PhoneNumber",
    "RateLimiter",
    "Rejected",
    "RetryableError",
    "SmallTalkItem",
    "TargetParked",
    "TaskSpec",
    "TimeoutHTTPAdapter",
    "TranscriptChunk",
    "User",
    "Wait",
    "WriteResult",
    "adapter_class",
    "available_adapters",
    "build_adapter",
    "bullets",
    "create_once",
    "fingerprint",
    "html",
    "mapped_constants",
    "name_words",
    "observe_request",
    "open_store",
    "option",
    "parse_stored",
    "retry_after",
    "same_number",
    "scrub",
    "scrubbed_errors",
    "truncate_to",
]


def test_the_public_names_are_pinned() -> None:
    assert sorted(kit.__all__) == sorted(EXPECTED)


def test_every_public_name_is_importable() -> None:
    namespace: dict[str, object] = {}
    exec("from connector.adapters import *", namespace)
    assert sorted(n for n in namespace if not n.startswith("__")) == sorted(EXPECTED)


def test_every_public_name_is_documented() -> None:
    undocumented = []
    for name in kit.__all__:
        obj = getattr(kit, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            if not (obj.__doc__ or "").strip():
                undocumented.append(name)
        elif name not in (kit.__doc__ or ""):  # constants are described in the module docstring
            undocumented.append(name)
    assert undocumented == []


def test_the_classes_and_functions_are_all_in_the_module_docstring() -> None:
    missing = [name for name in kit.__all__ if f"`{name}`" not in (kit.__doc__ or "")]
    assert missing == []
