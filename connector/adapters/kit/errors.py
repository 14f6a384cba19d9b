"""The errors an adapter raises; their class tells the pipeline to retry, park or give up."""

from __future__ import annotations

from datetime import datetime

__all__ = ["AdapterError", "OutcomeUnknown", "PermanentError", "RetryableError", "TargetParked"]


class AdapterError(Exception):
    """Base of the errors an adapter raises; the message must not contain personal data."""


class RetryableError(AdapterError):
    """A temporary failure (outage, timeout, rate limit): the delivery is tried again later.

    `retry_after` (seconds) is honoured when the target said how long to wait.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OutcomeUnknown(RetryableError):
    """A write was sent but its answer was lost (timeout, broken connection, 5xx after sending).

    It may or may not have been applied: the retry must look the object up before creating it
    again (`connector.adapters.create_once` does).
    """


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
