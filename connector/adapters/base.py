"""The contract every delivery target implements, and what the pipeline hands it.

An adapter is a subclass of `Adapter` that declares its options as a frozen dataclass
(`options_type`, from which `config_schema` follows) and implements a few small steps; the
pipeline runs the flow, handles retries and records results, and never names a CRM. Adapters
never see HTTP requests from sipgate or YAML files: they get validated options and
`CallReport`-derived jobs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib.resources.abc import Traversable
from typing import Any, ClassVar, Self

from marshmallow import Schema

from connector.adapters.kit.errors import (
    AdapterError,
    PermanentError,
    RetryableError,
    TargetParked,
)
from connector.adapters.kit.journal import Journal
from connector.adapters.kit.memo import Memo, MemoryMemo
from connector.adapters.kit.options import OptionsSchema, options_schema
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


@dataclass(frozen=True)
class CheckResult:
    """One line of a preflight check."""

    ok: bool
    message: str


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

    def personal_values(self) -> tuple[str, ...]:
        """The names this job carries (matched records, sipgate users), whole and word by word:
        what a CRM may echo in an error and `scrub` must remove (numbers it removes anyway)."""
        names = [r.name for r in self.matches if r.name]
        names += [u.full_name for u in self.report.users if u.full_name]
        words = [w for name in names for w in name.split() if len(w) >= 3]
        return tuple(dict.fromkeys([*names, *words]))


@dataclass(frozen=True)
class WriteResult:
    """References of what a write created or updated (ids, URLs), stored in the ledger."""

    refs: Mapping[str, Any]


class Adapter(ABC):
    """A delivery target.

    Subclasses set `type_name` and `options_type` (a frozen dataclass; `config_schema` is
    derived from it), implement `check` and `write`, and are registered in the
    ``sipgate_crm.adapters`` entry-point group under `type_name`.
    """

    type_name: ClassVar[str] = ""
    #: The adapter's options, a frozen dataclass (see `connector.adapters.option`).
    options_type: ClassVar[type[Any] | None] = None
    #: The schema a target entry is validated with: derived from `options_type` when set.
    config_schema: ClassVar[type[Schema]] = OptionsSchema
    #: The mapping a target of this type uses when it names none (a file in the package).
    default_mapping: ClassVar[Traversable | None] = None
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
    #: Whether `search_by_name` is implemented (the console's review queue then offers it).
    supports_name_search: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("options_type") is not None:
            cls.config_schema = options_schema(cls.__dict__["options_type"])

    def __init__(self, name: str, options: Any) -> None:
        self.name = name
        #: The validated options: an `options_type` instance (a mapping for schema-only adapters).
        self.options: Any = options
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

    def search_by_name(self, name: str, object_types: Sequence[str]) -> list[CrmRecord]:
        """Records of `object_types` whose name holds every word of `name` (a person typed it:
        build the query from `name_words`, never from the raw text); at most a few dozen.

        Optional: set `supports_name_search` when implemented.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot search by name.")

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
