"""The contract every delivery target implements, and the errors that steer retries.

An adapter is a subclass of `Adapter` that declares its options as a marshmallow schema
(`config_schema`) and implements a few small steps; the pipeline runs the flow, handles retries and
records results, and never names a CRM. Adapters never see HTTP requests from sipgate or YAML files:
they get validated options and `CallReport`-derived jobs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar, Self

from marshmallow import RAISE, Schema

from connector.config.sections import TargetConfig
from connector.fields import IdString
from connector.payload import CallReport
from connector.phone import PhoneNumber

__all__ = [
    "Adapter",
    "AdapterError",
    "CheckResult",
    "CrmRecord",
    "DeliveryJob",
    "IdString",
    "Journal",
    "Memo",
    "MemoryMemo",
    "OptionsSchema",
    "PermanentError",
    "RetryableError",
    "TargetParked",
    "TaskSpec",
    "WriteResult",
]


class AdapterError(Exception):
    """Base of the errors an adapter raises; the message must not contain personal data."""


class RetryableError(AdapterError):
    """A temporary failure (outage, timeout, rate limit): the delivery is tried again later.

    `retry_after` (seconds) is honoured when the target said how long to wait.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TargetParked(RetryableError):
    """The whole target cannot take writes until `until` (for example a daily API limit).

    Every delivery to the target waits until then without using up attempts; `sipgate-crm status`
    shows the reason.
    """

    def __init__(self, message: str, *, until: datetime) -> None:
        super().__init__(message)
        self.until = until


class PermanentError(AdapterError):
    """A failure that retrying cannot fix (bad credentials, missing permission, rejected data).

    The delivery goes to ``dead`` with this message; `sipgate-crm replay` retries it after a fix.
    """


@dataclass(frozen=True)
class CheckResult:
    """One line of a preflight check."""

    ok: bool
    message: str


class Memo(ABC):
    """A small durable key-value store per target, shared by all workers (kept in the ledger).

    Adapters use it for facts that outlive one delivery, e.g. "this new number already got a
    contact" while the CRM's search index has not caught up yet.
    """

    @abstractmethod
    def get(self, key: str) -> str | None:
        """The value stored under `key`, or ``None``."""

    @abstractmethod
    def reserve(self, key: str, value: str) -> bool:
        """Store `value` under `key` only if the key is free; ``True`` if this call stored it."""

    @abstractmethod
    def set(self, key: str, value: str) -> None:
        """Store `value` under `key`, replacing what was there."""

    @abstractmethod
    def replace(self, key: str, expected: str | None, value: str) -> bool:
        """Compare and set: store `value` only if `key` still holds `expected` (``None``: absent).

        ``True`` if this call stored it; of several workers replacing the same value, one wins.
        """

    @abstractmethod
    def delete(self, key: str) -> None:
        """Forget `key`."""


class MemoryMemo(Memo):
    """A `Memo` in a dict: for tests and one-off tools."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def reserve(self, key: str, value: str) -> bool:
        if key in self.values:
            return False
        self.values[key] = value
        return True

    def set(self, key: str, value: str) -> None:
        self.values[key] = value

    def replace(self, key: str, expected: str | None, value: str) -> bool:
        if self.values.get(key) != expected:
            return False
        self.values[key] = value
        return True

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


class Journal:
    """What a delivery has already written, persisted at once, so a retry never writes it twice.

    Adapters `record` the reference of every object they create right after creating it and `get`
    it before creating; the ledger keeps the journal across crashes and retries.
    """

    def __init__(
        self, refs: Mapping[str, Any] | None = None, save: Callable[[str, Any], None] | None = None
    ) -> None:
        self._refs = dict(refs or {})
        self._save = save

    def get(self, key: str) -> Any:
        """The reference recorded under `key`, or ``None``."""
        return self._refs.get(key)

    def record(self, key: str, value: Any) -> None:
        """Remember `value` under `key` and persist it before returning."""
        self._refs[key] = value
        if self._save is not None:
            self._save(key, value)

    def as_dict(self) -> dict[str, Any]:
        """Everything recorded so far."""
        return dict(self._refs)


@dataclass(frozen=True)
class CrmRecord:
    """A record a CRM search found (or the adapter created) that a call can be logged on.

    `phones` holds the phone values as stored in the CRM, for the local re-check against the
    caller's number; `parent_id` is the record's company/account, when it has one.
    """

    object_type: str  # the adapter's own names, e.g. "contact", "lead", "company", "account"
    id: str
    phones: tuple[str, ...] = ()
    name: str = ""
    owner_id: str | None = None
    modified_at: datetime | None = None
    parent_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskSpec:
    """A follow-up task made from one action item; `priority` is ``low``, ``normal`` or ``high``."""

    subject: str
    body: str
    due: date
    priority: str = "normal"
    owner_id: str | None = None


@dataclass(frozen=True)
class DeliveryJob:
    """What the pipeline hands an adapter to write: the call and what the earlier steps decided.

    `fields` are the rendered mapping templates for the call record (CRM field name → value,
    already cut to each field's limit); `matches` are the records to log the call on, chosen by
    the matching policy; `overflow` is text that did not fit (for a note, when the CRM has one).
    """

    report: CallReport
    fields: Mapping[str, Any] = field(default_factory=dict)
    matches: tuple[CrmRecord, ...] = ()
    tasks: tuple[TaskSpec, ...] = ()
    owner_id: str | None = None
    overflow: str = ""
    remote: PhoneNumber | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WriteResult:
    """References of what a write created or updated (ids, URLs), stored in the ledger."""

    refs: Mapping[str, Any]


class OptionsSchema(Schema):
    """Base for adapter option schemas: unknown keys are errors (they are usually typos)."""

    class Meta:
        unknown = RAISE


class Adapter(ABC):
    """A delivery target.

    Subclasses set `type_name` and `config_schema`, implement `check` and `write`, and are
    registered in the ``sipgate_crm.adapters`` entry-point group under `type_name`.
    """

    type_name: ClassVar[str] = ""
    config_schema: ClassVar[type[Schema]] = OptionsSchema
    #: Object types `search_by_phone` can find, most specific first (empty: no matching step).
    searchable_objects: ClassVar[tuple[str, ...]] = ()
    #: Object types `create_record` can create for ``on_no_match``.
    creatable_objects: ClassVar[tuple[str, ...]] = ()
    #: The call record's fields a mapping may write (``fields`` keys); ``check-config`` reports
    #: any other. Empty: not declared, any name is taken (``check`` should verify them).
    writable_fields: ClassVar[frozenset[str]] = frozenset()
    #: Hard length limits of the call record's fields (the mapping may set lower ones).
    field_limits: ClassVar[Mapping[str, int]] = {}
    #: Whether `write` stores `DeliveryJob.overflow` (text that did not fit) in a record of its own.
    supports_overflow: ClassVar[bool] = False

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        self.name = name
        self.options = options
        self.memo: Memo = MemoryMemo()

    def bind_memo(self, memo: Memo) -> None:
        """Use `memo` (the ledger-backed store the worker provides) instead of the in-memory one."""
        self.memo = memo

    @classmethod
    def from_config(cls, target: TargetConfig) -> Self:
        """Build the adapter from a validated target configuration."""
        return cls(target.name, target.options)

    @abstractmethod
    def check(self) -> list[CheckResult]:
        """Preflight: can this target be written to as configured? One result per finding."""

    @abstractmethod
    def write(self, job: DeliveryJob, journal: Journal) -> WriteResult:
        """Write the call. Must be idempotent per call id: consult and fill `journal`.

        Raise `RetryableError`/`TargetParked` for temporary failures and `PermanentError` for
        failures a retry cannot fix.
        """

    def search_by_phone(self, number: PhoneNumber, object_types: Sequence[str]) -> list[CrmRecord]:
        """Records of `object_types` whose phone fields may hold `number` (ideally one request).

        Hits need not be exact: the matching policy re-checks each against the caller's number.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot search by phone number.")

    def describe_search(self, number: PhoneNumber, object_types: Sequence[str]) -> dict[str, Any]:
        """The request `search_by_phone` would send, for ``sipgate-crm dry-run``."""
        return {"search": list(object_types), "number": number.e164}

    def create_record(
        self, object_type: str, number: PhoneNumber, fields: Mapping[str, Any], journal: Journal
    ) -> CrmRecord:
        """Create a record for an unknown caller (``on_no_match``); idempotent via `journal`."""
        raise NotImplementedError(f"{type(self).__name__} cannot create {object_type} records.")

    def resolve_owner(self, email: str) -> str | None:
        """The CRM owner id of the user with this e-mail address, or ``None``."""
        return None

    def describe_write(self, job: DeliveryJob) -> list[dict[str, Any]]:
        """The operations `write` would perform for `job` (records with every field and
        associations), for ``sipgate-crm dry-run``; writes nothing."""
        return [{"op": "write", "target": self.name, "fields": dict(job.fields)}]

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default has nothing to release."""
