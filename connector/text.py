"""Text helpers for CRM field values: cut to a limit, escape, bullet lists, HTML paragraphs.

Templates use them as filters and adapters call them directly; they know nothing of Jinja2.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any, Final

from markupsafe import escape

from connector.payload import ActionItem

__all__ = ["bullets", "html", "paragraphs_html", "truncate_to"]

#: Zero-width joiner: glues emoji into one sequence (family, profession); never cut next to it.
_ZWJ: Final = "\u200d"


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _prefix_within(text: str, budget: int) -> int:
    """Length of the longest prefix of `text` that takes at most `budget` UTF-16 code units."""
    if _utf16_units(text) == len(text):
        return min(budget, len(text))
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > budget:
            return index
    return len(text)


def _is_regional_indicator(char: str) -> bool:
    return "\U0001f1e6" <= char <= "\U0001f1ff"


def _splits_cluster(text: str, cut: int) -> bool:
    """True when cutting `text` before index `cut` would split a user-perceived character."""
    before, after = text[cut - 1], text[cut]
    if unicodedata.category(after) in ("Mn", "Mc", "Me"):
        return True
    if after == _ZWJ or before == _ZWJ or "\U0001f3fb" <= after <= "\U0001f3ff":
        return True
    if before == "\r" and after == "\n":
        return True
    if "\ud800" <= before <= "\udbff" and "\udc00" <= after <= "\udfff":  # lone surrogates
        return True
    if _is_regional_indicator(before) and _is_regional_indicator(after):
        run = 0
        while cut - 1 - run >= 0 and _is_regional_indicator(text[cut - 1 - run]):
            run += 1
        return run % 2 == 1
    return False


def truncate_to(value: Any, limit: int, marker: str = "…") -> str:
    """Cut `value` so that the result, `marker` included, is at most `limit` characters long.

    A value that fits is returned unchanged; otherwise it is cut, trailing whitespace removed and
    `marker` appended. Length is counted in UTF-16 code units (what Java/JavaScript based CRMs
    count), which is never less than Python's ``len``, so the result fits either way. The cut
    does not split a combining mark, emoji sequence or flag from its base when that can be avoided.
    If `limit` leaves no room for any text besides the marker, the text is cut without marker.
    None becomes "". Raises ValueError for a negative `limit`.
    """
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"truncate_to: limit must be an integer, not {type(limit).__name__}")
    if limit < 0:
        raise ValueError(f"truncate_to: limit must not be negative, got {limit}")
    text = "" if value is None else str(value)
    if _utf16_units(text) <= limit:
        return text
    mark = "" if marker is None else str(marker)
    if _utf16_units(mark) >= limit:
        mark = ""
    cut = _prefix_within(text, limit - _utf16_units(mark))
    steps = 0
    while 0 < cut < len(text) and steps < 32 and _splits_cluster(text, cut):
        cut -= 1
        steps += 1
    return text[:cut].rstrip() + mark


def html(value: Any) -> str:
    """`value` as text with ``& < > " '`` escaped for HTML; None becomes ""."""
    if value is None:
        return ""
    return str(escape(value))


def _item_text(item: Any) -> str:
    if item is None:
        return ""
    if isinstance(item, ActionItem):
        return item.content
    if isinstance(item, Mapping):
        if "content" in item:
            return str(item["content"] or "")
        if "topic" in item or "description" in item:
            parts = [str(item.get("topic") or ""), str(item.get("description") or "")]
            return ": ".join(p for p in parts if p)
    return str(item)


def _html_lines(text: str) -> str:
    return "<br>".join(html(line) for line in text.split("\n"))


def bullets(items: Any, style: str = "-") -> str:
    """A list as bullet points; empty items are left out, no items give "".

    Plain (default): one ``"- item"`` line per item, `style` being the bullet (``"*"``, ``"•"``);
    continuation lines of multi-line items are indented. ``style="html"``:
    ``<ul><li>item</li>…</ul>`` with every item HTML-escaped (newlines as ``<br>``). A single
    string counts as one item; dicts with ``content`` or ``topic``/``description`` are shown by
    those values.
    """
    if items is None:
        return ""
    sequence: Iterable[Any] = [items] if isinstance(items, str) else items
    texts = [_item_text(item).replace("\r\n", "\n").strip() for item in sequence]
    texts = [text for text in texts if text]
    if not texts:
        return ""
    if style == "html":
        return "<ul>" + "".join(f"<li>{_html_lines(text)}</li>" for text in texts) + "</ul>"
    indent = "\n" + " " * (len(style) + 1)
    return "\n".join(f"{style} {text.replace(chr(10), indent)}" for text in texts)


_PARAGRAPH_BREAK: Final = re.compile(r"\n[ \t]*\n\s*")


def paragraphs_html(value: Any) -> str:
    """Text as HTML paragraphs: ``<p>…</p>`` per blank-line separated paragraph, HTML-escaped,
    single newlines as ``<br>``; None or blank text gives ""."""
    if value is None:
        return ""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = [p.strip() for p in _PARAGRAPH_BREAK.split(text)]
    return "".join(f"<p>{_html_lines(p)}</p>" for p in paragraphs if p)
