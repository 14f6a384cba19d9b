"""The contract every delivery target implements, and the errors that steer retries.

An adapter is a subclass of `Adapter` that declares its options as a marshmallow schema
(`config_schema`) and implements a few small steps; the pipeline runs the flow, handles retries and
records results, and never names a CRM. Adapters never see HTTP requests from sipgate or YAML files:
they get validated options and `CallReport`-derived jobs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Self

from marshmallow import RAISE, Schema

from connector.config import TargetConfig
from connector.payload import CallReport

__all__ = [
    "Adapter",
    "AdapterError",
    "CheckResult",
    "DeliveryJob",
    "Journal",
    "OptionsSchema",
    "PermanentError",
    "RetryableError",
    "TargetParked",
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
class DeliveryJob:
    """What the pipeline hands an adapter to write: the call and what the earlier steps decided."""

    report: CallReport
    fields: Mapping[str, Any] = field(default_factory=dict)


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

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        self.name = name
        self.options = options

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

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default has nothing to release."""
