"""Logging setup and redaction: secrets, transcripts and full phone numbers never reach the logs."""

from __future__ import annotations

import logging
import re

__all__ = ["SecretFilter", "configure_logging", "mask_number"]

_DIGITS = re.compile(r"\d")


def mask_number(number: str | None) -> str:
    """A phone number with every digit but the last three replaced by ``*``.

    ``"4921163553400"`` → ``"**********400"``; empty or non-numeric values (``anonymous``) are kept.
    """
    if not number:
        return ""
    digits = _DIGITS.findall(number)
    if len(digits) <= 3:
        return number
    keep = len(digits) - 3
    out: list[str] = []
    for ch in number:
        if ch.isdigit() and keep > 0:
            out.append("*")
            keep -= 1
        else:
            out.append(ch)
    return "".join(out)


class SecretFilter(logging.Filter):
    """Drops configured secrets from every formatted record, as a last line of defence."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            if record.exc_info:  # tracebacks may quote a request path with the secret
                message += "\n" + logging.Formatter().formatException(record.exc_info)
                record.exc_info = None
            for secret in self.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


def configure_logging(level: str = "INFO", secrets: list[str] | None = None) -> None:
    """Log to stderr at `level`, with `secrets` scrubbed from every message."""
    root = logging.getLogger()
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter(secrets or []))
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Request lines of the HTTP clients would carry search terms (phone numbers) at DEBUG.
    # The CRM SDKs log whole response bodies (names, numbers) at DEBUG.
    for noisy in ("urllib3", "huey.consumer.Scheduler", "alembic", "hubspot", "simple_salesforce"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
