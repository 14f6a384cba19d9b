"""Turning what a person typed into a name search: words only, so no CRM query syntax leaks in.

A CRM's name search has operators and reserved characters (SOSL's ``* ? " { } ( ) AND OR``,
HubSpot's ``*`` wildcard in ``CONTAINS_TOKEN``). `name_words` keeps only the words of the text
(letters and digits, at least two), so whatever a person types can widen no search and break no
query; an adapter then quotes or escapes each word as its CRM wants.
"""

from __future__ import annotations

import re

__all__ = ["name_words"]

_WORD = re.compile(r"[^\W_]{2,}")


def name_words(text: str, limit: int = 4) -> tuple[str, ...]:
    """The first `limit` distinct words of `text` (two or more letters or digits), lowercased.

    ``'Erika "Beispiel*" OR {x}'`` → ``("erika", "beispiel", "or")``; ``"*"`` → ``()``.
    """
    words = dict.fromkeys(w.casefold() for w in _WORD.findall(text))
    return tuple(words)[:limit]
