"""The adapter kit: everything an adapter may use, in one public namespace.

Third-party adapters import from here only; the modules behind it are private. The list is
pinned by a test, so nothing leaves it by accident. In groups:

* the interface: `Adapter`, `CheckResult`, `DeliveryJob`, `CrmRecord`, `TaskSpec`,
  `WriteResult`, and typed options (`option`, `IdString`);
* what a call is: `CallReport`, `User`, `Channel`, `ActionItem`, `SmallTalkItem`,
  `TranscriptChunk`, `PhoneNumber` (with its `variants`), `parse_stored`, `same_number`;
* errors: `AdapterError`, `RetryableError`, `OutcomeUnknown`, `TargetParked`, `PermanentError`;
* state: `Journal` (per delivery), `Memo` / `MemoryMemo` (per target);
* protocols as helpers: `create_once` and `fingerprint`, `CallerClaims`, `OwnerCache`, and
  `mapped_constants` (what a mapping writes whatever the call, for a preflight);
* HTTP: `HttpClient`, `HttpPolicy` with `Failure` and `Wait`, `Rejected`, `retry_after`,
  `TimeoutHTTPAdapter`, `scrub`, `scrubbed_errors`, `observe_request` (counts a request a
  client sends by other means than `HttpClient` in the CRM request metrics), and the shared
  request budget `RateLimiter` with `Budget` and `open_store`;
* text: `truncate_to`, `html`, `bullets`, and `name_words` (a typed name as search words);
* finding adapters: ``ENTRY_POINT_GROUP`` (the entry-point group, ``sipgate_crm.adapters``),
  `AdapterNotFound`, `adapter_class`, `available_adapters`, `build_adapter`.
"""

from __future__ import annotations

from connector.adapters.base import (
    Adapter,
    CheckResult,
    CrmRecord,
    DeliveryJob,
    TaskSpec,
    WriteResult,
)
from connector.adapters.kit.claims import CallerClaims
from connector.adapters.kit.constants import mapped_constants
from connector.adapters.kit.errors import (
    AdapterError,
    OutcomeUnknown,
    PermanentError,
    RetryableError,
    TargetParked,
)
from connector.adapters.kit.http import (
    Failure,
    HttpClient,
    HttpPolicy,
    Rejected,
    TimeoutHTTPAdapter,
    Wait,
    retry_after,
)
from connector.adapters.kit.journal import Journal
from connector.adapters.kit.memo import Memo, MemoryMemo
from connector.adapters.kit.names import name_words
from connector.adapters.kit.observe import observe_request
from connector.adapters.kit.options import option
from connector.adapters.kit.owners import OwnerCache
from connector.adapters.kit.ratelimit import Budget, RateLimiter, open_store
from connector.adapters.kit.scrub import scrub, scrubbed_errors
from connector.adapters.kit.steps import create_once, fingerprint
from connector.adapters.registry import (
    ENTRY_POINT_GROUP,
    AdapterNotFound,
    adapter_class,
    available_adapters,
    build_adapter,
)
from connector.fields import IdString
from connector.payload import (
    ActionItem,
    CallReport,
    Channel,
    SmallTalkItem,
    TranscriptChunk,
    User,
)
from connector.phone import PhoneNumber, parse_stored, same_number
from connector.text import bullets, html, truncate_to

__all__ = [
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
