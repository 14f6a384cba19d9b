"""``log_format: json``: one JSON object per line, with the call, delivery and target where known.

Every line has ``timestamp`` (ISO 8601, UTC), ``level``, ``logger`` and ``message``; a line
written while a delivery is worked on also has ``delivery_id``, ``target`` and ``call_id``
(`log_context`). Messages pass the same filters as in text mode (secrets scrubbed, numbers
masked where the code masks them), so JSON carries nothing the text lines would not.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pythonjsonlogger.json import JsonFormatter

__all__ = ["FORMATS", "ContextFilter", "apply_format", "json_formatter", "log_context"]

FORMATS = ("text", "json")

_CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "sipgate_crm_log_context", default=None
)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add `fields` (e.g. ``delivery_id=42, target="crm"``) to every line logged inside."""
    token = _CONTEXT.set({**(_CONTEXT.get() or {}), **fields})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class ContextFilter(logging.Filter):
    """Copies the current `log_context` onto each record (fields already set win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_CONTEXT.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def json_formatter() -> logging.Formatter:
    """The JSON line formatter: timestamp, level, logger, message and any context fields."""
    return JsonFormatter(
        "{levelname}{name}{message}",
        style="{",
        rename_fields={"levelname": "level", "name": "logger", "exc_info": "traceback"},
        timestamp=True,
        json_ensure_ascii=False,
    )


def apply_format(log_format: str, loggers: tuple[logging.Logger, ...] = ()) -> None:
    """Switch the handlers of the root logger (and of `loggers`) to `log_format`.

    Call after `connector.logs.configure_logging`; ``text`` leaves them as they are.
    """
    if log_format != "json":
        return
    for logger in (logging.getLogger(), *loggers):
        for handler in logger.handlers:
            handler.setFormatter(json_formatter())
            if not any(isinstance(f, ContextFilter) for f in handler.filters):
                handler.addFilter(ContextFilter())
