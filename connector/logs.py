"""Logging setup and redaction: no secret, path tail, full number or control character in a log."""

from __future__ import annotations

import logging
import re

__all__ = ["RedactingFilter", "Redactor", "configure_logging", "mask_number"]

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


# C0 and C1 controls and the Unicode line breaks: each could start a new line in a log viewer.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class Redactor:
    """What may reach a log line: secrets masked, nothing after the webhook path, one line.

    ``redactor(text)`` also escapes control characters (``\\n`` → ``\\x0a``), so a value from a
    request cannot forge a log line; `scrub` keeps line breaks (for tracebacks).
    """

    def __init__(self, secrets: list[str], webhook_path: str | None) -> None:
        self.secrets = [s for s in secrets if s]
        # The secret segment, or a mistyped one: whatever follows the path is never logged.
        self._after_path = (
            re.compile(re.escape(webhook_path) + r"/[^\s\"']*") if webhook_path else None
        )
        self._path = webhook_path

    def scrub(self, text: str) -> str:
        """`text` with secrets and whatever follows the webhook path replaced by ``***``."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        if self._after_path is not None and self._path and self._path + "/" in text:
            text = self._after_path.sub(self._path + "/***", text)
        return text

    def __call__(self, text: str) -> str:
        """`scrub` of `text` on one line, control characters escaped."""
        return _CONTROL.sub(_escape, self.scrub(text))


class RedactingFilter(logging.Filter):
    """Applies a `Redactor` to every record, as the last line of defence: the message stays on
    one line, a traceback keeps its lines but loses secrets and paths."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        message = self.redact(record.getMessage())
        if record.exc_info:  # tracebacks may quote a request path with the secret
            trace = logging.Formatter().formatException(record.exc_info)
            message += "\n" + self.redact.scrub(trace)
            record.exc_info = None
        record.msg, record.args = message, None
        return True


def configure_logging(
    level: str = "INFO", secrets: list[str] | None = None, webhook_path: str | None = None
) -> None:
    """Log to stderr at `level` through a `Redactor` of `secrets` and `webhook_path`."""
    root = logging.getLogger()
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(Redactor(secrets or [], webhook_path)))
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Request lines of the HTTP clients would carry search terms (phone numbers) at DEBUG.
    # The CRM SDKs log whole response bodies (names, numbers) at DEBUG.
    for noisy in ("urllib3", "huey.consumer.Scheduler", "alembic", "hubspot", "simple_salesforce"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
