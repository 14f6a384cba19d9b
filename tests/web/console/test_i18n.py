"""The console's labels: every one in English and German, every one the pages name exists."""

from __future__ import annotations

import re
from pathlib import Path

import connector.web.console as console
from connector.web.console.i18n import LABELS, LANGUAGES

PAGES = Path(console.__file__).parent
NAMED = re.compile(r"""\b(?:t|label)\(\s*["']([a-z_0-9]+)["']\s*[,)]""")  # a whole key


def test_every_label_is_in_every_language() -> None:
    missing = [
        (key, language)
        for key, entry in LABELS.items()
        for language in LANGUAGES
        if not entry.get(language, "").strip()
    ]
    assert missing == []


def test_every_label_a_page_names_exists() -> None:
    sources = [*PAGES.glob("templates/**/*.html"), *PAGES.glob("*.py")]
    named = {key for path in sources for key in NAMED.findall(path.read_text(encoding="utf-8"))}
    assert {"search_crm", "dead_deliveries", "latest_reason"} <= named  # the scan works
    assert sorted(named - LABELS.keys()) == []
