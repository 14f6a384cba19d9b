"""Tests for connector.text: cutting to a limit, escaping, bullet lists, HTML paragraphs."""

from __future__ import annotations

import pytest

from connector.payload import ActionItem
from connector.text import bullets, html, paragraphs_html, truncate_to


def test_truncate_to() -> None:
    assert truncate_to("short", 10) == "short"
    assert truncate_to("exactly10!", 10) == "exactly10!"
    assert truncate_to("Hello world, how are you", 12) == "Hello world…"
    assert len(truncate_to("Hello world, how are you", 12)) <= 12
    assert truncate_to("abcdef", 4, marker="...") == "a..."
    assert truncate_to("abcdef", 3, marker="...") == "abc"
    assert truncate_to("abcdef", 0) == ""
    assert truncate_to(None, 5) == ""
    assert truncate_to(12345678, 4) == "123…"
    with pytest.raises(ValueError):
        truncate_to("abc", -1)


def test_truncate_to_keeps_characters_whole() -> None:
    decomposed = "Gru\u0308\u00dfe"  # "Grüße" with a combining diaeresis
    assert truncate_to(decomposed, 4) == "Gr…"
    assert truncate_to("ab😀😀", 4) == "ab…"  # 😀 takes two UTF-16 code units
    assert truncate_to("ab🇩🇪🇦🇹", 6) == "ab…"  # never half a flag
    assert truncate_to("ab👍🏽cd", 5) == "ab…"  # no modifier without its emoji
    family = "ab👩\u200d👩\u200d👧cd"
    assert "\u200d" not in truncate_to(family, 7)[-2:]
    for limit in range(12):
        result = truncate_to(family, limit)
        assert len(result.encode("utf-16-le")) // 2 <= limit


def test_truncate_to_umlauts() -> None:
    text = "Über die Änderung der Größe wurde gesprochen."
    result = truncate_to(text, 20)
    assert result == "Über die Änderung d…"
    assert len(result) == 20


def test_html() -> None:
    assert html("<b>Müller & Söhne</b> \"x\" 'y'") == (
        "&lt;b&gt;Müller &amp; Söhne&lt;/b&gt; &#34;x&#34; &#39;y&#39;"
    )
    assert html(None) == ""
    assert isinstance(html("x"), str) and type(html("x")) is str


def test_bullets() -> None:
    assert bullets(["a", "b"]) == "- a\n- b"
    assert bullets(["a", "b"], style="*") == "* a\n* b"
    assert bullets(["a", "", None, "b"]) == "- a\n- b"
    assert bullets(["line one\nline two"]) == "- line one\n  line two"
    assert (
        bullets(["a & <b>", "ü"], style="html") == "<ul><li>a &amp; &lt;b&gt;</li><li>ü</li></ul>"
    )
    assert bullets([], style="html") == ""
    assert bullets(None) == ""
    assert bullets("single") == "- single"
    assert bullets([ActionItem("Call back")]) == "- Call back"
    assert bullets([{"topic": "Weather", "description": "Rainy"}]) == "- Weather: Rainy"


def test_paragraphs_html() -> None:
    text = "First <line>\nsecond line\n\n\nNew paragraph & more\r\n\r\nLast"
    assert paragraphs_html(text) == (
        "<p>First &lt;line&gt;<br>second line</p><p>New paragraph &amp; more</p><p>Last</p>"
    )
    assert paragraphs_html("") == ""
    assert paragraphs_html("  \n\n ") == ""
    assert paragraphs_html(None) == ""
