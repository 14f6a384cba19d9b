"""Tests for connector.render.sandbox: the environment, the sandbox, rendering with limits."""

from __future__ import annotations

import dataclasses

import jinja2
import pytest

from connector.payload import ActionItem, CallReport
from connector.render.check import check_templates
from connector.render.context import build_context
from connector.render.sandbox import (
    TemplateProblem,
    compile_templates,
    make_environment,
    render_fields,
)
from tests.render.helpers import render_one


def test_environment_settings() -> None:
    env = make_environment()
    assert isinstance(env, jinja2.sandbox.ImmutableSandboxedEnvironment)
    assert env.undefined is jinja2.StrictUndefined
    assert env.trim_blocks and env.lstrip_blocks
    assert not env.keep_trailing_newline
    assert env.autoescape is False
    for name in (
        "truncate_to",
        "html",
        "bullets",
        "paragraphs_html",
        "date",
        "datetime",
        "duration_human",
        "e164",
        "national",
    ):
        assert name in env.filters


def test_blocks_in_templates_leave_no_stray_whitespace(report_v1: CallReport) -> None:
    source = "{% for item in action_items %}\n  {{ item }}\n{% endfor %}\n"
    assert render_one(source, build_context(report_v1)) == (
        "Send plan options to the customer by email.\n"
        "  Review the additional package and cancel it if necessary."
    )


def test_none_prints_as_empty_and_inline_if_without_else(report_legacy: CallReport) -> None:
    context = build_context(report_legacy)
    assert render_one("[{{ user }}]", context) == "[]"
    assert render_one("[{{ user.full_name if user }}]", context) == "[]"


# --- sandbox ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ call.__init__ }}",
        "{{ call['__class__'] }}",
        "{{ call.update({'id': 'x'}) }}",
        "{{ action_items.append('x') }}",
        "{{ labels.clear() }}",
        "{{ 'x' * 100000000 }}",
        "{{ 10 ** 100000000 }}",
    ],
)
def test_sandbox_blocks_unsafe_access(source: str, report_v1: CallReport) -> None:
    problems = check_templates({"subject": source})
    assert len(problems) == 1
    assert problems[0].field == "subject"
    assert "unsafe" in problems[0].message or "too large" in problems[0].message

    templates, _ = compile_templates({"subject": source})
    with pytest.raises(TemplateProblem) as raised:
        render_fields(templates, build_context(report_v1))
    assert raised.value.field == "subject"
    assert isinstance(raised.value.__cause__, jinja2.exceptions.SecurityError)


def test_dict_key_wins_over_dict_method(report_v1: CallReport) -> None:
    context = build_context(report_v1, extra={"record": {"items": "3 items", "name": "Beispiel"}})
    assert render_one("{{ record.items }} / {{ record.name }}", context) == "3 items / Beispiel"


# --- AI content variants and limits ------------------------------------------------------------

BODY = (
    "{% if summary %}{{ labels.summary }}:\n{{ summary }}\n\n{% endif %}"
    "{% if action_items %}{{ labels.action_items }}:\n{{ action_items | bullets }}\n\n{% endif %}"
    "{{ labels.transcript }}:\n{{ transcript }}"
)


def test_empty_summary_and_no_action_items(report_v1: CallReport) -> None:
    report = dataclasses.replace(report_v1, summary="", action_items=(), transcript="Hi.")
    assert render_one(BODY, build_context(report)) == "Transcript:\nHi."


def test_forty_action_items(report_v1: CallReport) -> None:
    items = tuple(ActionItem(f"Aufgabe Nr. {n} für Frau Müller") for n in range(1, 41))
    report = dataclasses.replace(report_v1, action_items=items)
    context = build_context(report, language="de")
    text = render_one("{{ labels.action_items }}:\n{{ action_items | bullets }}", context)
    lines = text.splitlines()
    assert lines[0] == "Aufgaben:"
    assert len(lines) == 41
    assert lines[40] == "- Aufgabe Nr. 40 für Frau Müller"
    html_list = render_one("{{ action_items | bullets('html') }}", context)
    assert html_list.count("<li>") == 40


def test_german_umlauts_survive(report_v1: CallReport) -> None:
    report = dataclasses.replace(
        report_v1,
        headline="Rückruf wegen Größenänderung",
        summary="Frau Müller möchte die Bestellgröße ändern. Straße: Musterweg 1.",
    )
    context = build_context(report, language="de")
    text = render_one("{{ labels.summary }} - {{ headline }}: {{ summary | html }}", context)
    assert text == (
        "Zusammenfassung - Rückruf wegen Größenänderung: "
        "Frau Müller möchte die Bestellgröße ändern. Straße: Musterweg 1."
    )


@pytest.mark.parametrize("limit", [32_000, 65_536])
def test_huge_transcript_is_cut_to_the_limit(limit: int, report_v1: CallReport) -> None:
    transcript = ("Caller: Grüß Gott, ich möchte etwas ändern. " * 5000)[:200_000]
    assert len(transcript) == 200_000
    report = dataclasses.replace(report_v1, transcript=transcript)
    templates, problems = compile_templates({"body": BODY, "subject": "{{ headline }}"})
    assert problems == []
    rendered = render_fields(templates, build_context(report), {"body": limit, "subject": 255})
    body = rendered["body"]
    assert len(body) <= limit
    assert len(body.encode("utf-16-le")) // 2 <= limit
    assert len(body) >= limit - 10
    assert body.endswith("…")
    assert body.startswith("Summary:\nThe customer called")
    assert rendered["subject"] == "Invoice inquiry and plan change"


def test_limits_apply_after_stripping(report_v1: CallReport) -> None:
    context = build_context(report_v1)
    assert render_one("   {{ headline }}   \n\n", context, limit=31) == (
        "Invoice inquiry and plan change"
    )
    assert render_one("   {{ headline }}   \n\n", context, limit=10) == "Invoice i…"


def test_html_body_cut_then_escaped_stays_within_limit(report_v1: CallReport) -> None:
    report = dataclasses.replace(report_v1, transcript="<&> " * 100_000)
    context = build_context(report)
    body = render_one("{{ transcript | truncate_to(1000) | html }}", context, limit=2_000)
    assert len(body) <= 2_000
