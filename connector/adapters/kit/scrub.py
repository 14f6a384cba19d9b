"""One scrubber for every error message: no phone numbers, e-mail addresses, names or tokens.

Error messages end up in the ledger, in logs and on ``sipgate-crm status``. CRMs echo the values
they were sent; `scrub` removes what looks like personal data or a credential, and the values an
adapter knows to be sensitive (`secrets`: tokens, the caller's name) wherever they appear.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Final

from connector.adapters.kit.errors import AdapterError
from connector.text import truncate_to

__all__ = ["WITHHELD", "scrub", "scrubbed_errors"]

#: What stands in for every removed value.
WITHHELD: Final = "…"
#: Longest message kept (the rest is cut).
MESSAGE_LIMIT: Final = 300

_EMAIL: Final = re.compile(r"[^\s@<>()\"',;:]+@[^\s@<>()\"',;:]+")
_PHONE_LIKE: Final = re.compile(r"(?<!\w)\+?\d[\d\s().\\/-]{4,}\d(?!\w)")
_BEARER: Final = re.compile(r"(?i)\b(bearer|token|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_CREDENTIAL_PARAM: Final = re.compile(
    r"(?i)\b(api_?token|api_?key|access_?token|token|key|secret|password|session_?id)=[^&\s]+"
)
#: Long runs of letters and digits mixed (API keys, JWTs): at least 20 characters, one digit.
_TOKEN_LIKE: Final = re.compile(r"(?<![\w-])(?=[A-Za-z0-9._-]*\d)[A-Za-z0-9._-]{20,}(?![\w-])")


def scrub(text: str, secrets: Iterable[str] = (), limit: int = MESSAGE_LIMIT) -> str:
    """`text` on one line, at most `limit` characters, without `secrets` (exact values, at
    least 3 characters), e-mail addresses, credentials and phone-number-like digit runs."""
    text = _withhold(text, secrets)
    text = _EMAIL.sub(WITHHELD, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {WITHHELD}", text)
    text = _CREDENTIAL_PARAM.sub(lambda m: f"{m.group(1)}={WITHHELD}", text)
    text = _TOKEN_LIKE.sub(WITHHELD, text)
    text = _PHONE_LIKE.sub(WITHHELD, text)
    return truncate_to(" ".join(text.split()), limit)


def _withhold(text: str, values: Iterable[str]) -> str:
    for value in sorted({v for v in values if v and len(v) >= 3}, key=len, reverse=True):
        text = re.sub(re.escape(value), WITHHELD, text, flags=re.IGNORECASE)
    return text


@contextmanager
def scrubbed_errors(values: Iterable[str]) -> Iterator[None]:
    """Remove `values` (e.g. `DeliveryJob.personal_values`) from the message of any
    `AdapterError` raised inside, wherever they appear; the error keeps its class and attributes
    (`retry_after`, `until`), so the pipeline treats it the same. (The adapter's messages went
    through `scrub` already: this adds what only the job knows.)"""
    try:
        yield
    except AdapterError as exc:
        exc.args = (_withhold(str(exc), values), *exc.args[1:])
        raise
