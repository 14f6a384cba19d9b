"""Tests for connector.render: sandboxed field templates, context, filters, checks, limits."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path
from typing import Any

import jinja2
import pytest

import connector.render as render_module
from connector.payload import ActionItem, CallReport, report_from_json
from connector.render import (
    TemplateProblem,
    build_context,
    bullets,
    check_templates,
    compile_templates,
    context_reference,
    html,
    make_environment,
    paragraphs_html,
    render_fields,
    truncate_to,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.fixture
def report_v1() -> CallReport:
    return report_from_json((FIXTURES / "example-v1.json").read_bytes())


@pytest.fixture
def report_legacy() -> CallReport:
    return report_from_json((FIXTURES / "example-legacy.json").read_bytes())


def render_one(source: str, context: dict[str, Any], limit: int | None = None) -> str:
    templates, problems = compile_templates({"field": source})
    assert problems == []
    limits = {"field": limit} if limit is not None else None
    return render_fields(templates, context, limits)["field"]


def at(report: CallReport, iso: str) -> CallReport:
    start = dt.datetime.fromisoformat(iso)
    return dataclasses.replace(report, start_time=start, end_time=None)


# --- environment ------------------------------------------------------------------------------


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


# --- checks -----------------------------------------------------------------------------------


def test_check_reports_typo_with_field_and_line() -> None:
    problems = check_templates({"subject": "{{ headline }}", "body": "Hi\n{{ headlin }}"})
    assert len(problems) == 1
    problem = problems[0]
    assert problem.field == "body"
    assert problem.line == 2
    assert "'headlin' is undefined" in problem.message
    assert str(problem).startswith("body: line 2:")


def test_check_reports_undefined_attribute() -> None:
    problems = check_templates({"subject": "{{ call.durration }}"})
    assert [p.field for p in problems] == ["subject"]
    assert "durration" in problems[0].message


def test_check_reports_several_problems_at_once() -> None:
    templates = {
        "subject": "{{ headline }}",
        "syntax": "line one\n{% if headline %}unclosed",
        "typo": "{{ sumary }}",
        "unsafe": "{{ call.__class__ }}",
        "filter": "{{ summary | no_such_filter }}",
        "bad_arg": "{{ summary | truncate_to(-1) }}",
        "not_text": 42,
    }
    problems = check_templates(templates)  # type: ignore[arg-type]
    assert [p.field for p in problems] == [
        "syntax",
        "typo",
        "unsafe",
        "filter",
        "bad_arg",
        "not_text",
    ]
    by_field = {p.field: p for p in problems}
    assert by_field["syntax"].line is not None
    assert "syntax error" in by_field["syntax"].message
    assert "no_such_filter" in by_field["filter"].message
    assert "must be text" in by_field["not_text"].message


def test_check_renders_the_minimal_sample() -> None:
    problems = check_templates(
        {
            "owner": "{{ user.full_name }}",
            "first_item": "{{ action_items[0] }}",
            "channel": "{{ call.channel.name }}",
            "safe_owner": "{{ user.full_name if user else '' }}",
            "safe_channel": "{% if call.channel %}{{ call.channel.name }}{% endif %}",
        }
    )
    assert [p.field for p in problems] == ["owner", "first_item", "channel"]
    assert all("minimal sample" in p.message for p in problems)


def test_check_passes_for_good_templates_in_both_languages() -> None:
    templates = {
        "subject": "{{ call.direction_label }}: {{ labels.call_from }} {{ remote.display }}",
        "body": (
            "{% if summary %}<h3>{{ labels.summary }}</h3>"
            "{{ summary | paragraphs_html }}{% endif %}"
            "{% if action_items %}{{ action_items | bullets('html') }}{% endif %}"
            "{{ transcript | truncate_to(1000) | html }}"
        ),
        "when": "{{ call.start | datetime }} ({{ call.duration | duration_human }})",
        "number": "{{ remote.raw | national }} {{ remote.raw | e164 }}",
    }
    assert check_templates(templates) == []
    assert check_templates(templates, language="de") == []


def test_check_with_extra_sample_values() -> None:
    templates = {"subject": "{{ record.name }}"}
    assert [p.field for p in check_templates(templates)] == ["subject"]
    assert check_templates(templates, extra={"record": {"name": "Beispiel GmbH"}}) == []


def test_check_rejects_unknown_language() -> None:
    with pytest.raises(ValueError, match="language"):
        check_templates({"subject": "x"}, language="xx")


def test_render_fields_raises_with_field_name(report_legacy: CallReport) -> None:
    templates, problems = compile_templates({"ok": "{{ headline }}", "owner": "{{ user.id }}"})
    assert problems == []
    with pytest.raises(TemplateProblem) as raised:
        render_fields(templates, build_context(report_legacy))
    assert raised.value.field == "owner"


def test_template_problem_pickles() -> None:
    import pickle

    problem = TemplateProblem("body", "line 2: oops", 2)
    copy = pickle.loads(pickle.dumps(problem))
    assert (copy.field, copy.message, copy.line) == ("body", "line 2: oops", 2)


# --- context ----------------------------------------------------------------------------------


def test_context_of_v1_report(report_v1: CallReport) -> None:
    context = build_context(report_v1)
    call = context["call"]
    assert call["id"] == "pbx-a1b2c3d4-e5f6-7890-abcd-ef1234567890"
    assert call["direction"] == "IN"
    assert call["direction_label"] == "Inbound call"
    assert call["start"].utcoffset() == dt.timedelta(hours=2)  # CEST in April
    assert call["start"].hour == 11
    assert call["end"] - call["start"] == dt.timedelta(seconds=82, microseconds=666000)
    assert call["date"] == dt.date(2026, 4, 8)
    assert call["duration"] == dt.timedelta(milliseconds=82666)
    assert call["duration_seconds"] == 83
    assert call["duration_human"] == "1 min 23 s"
    assert call["channel"] == {
        "id": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
        "name": "Support Channel",
    }
    assert call["payload_version"] == "1"
    assert context["remote"] == {
        "e164": "+4921163553400",
        "digits": "4921163553400",
        "national": "0211 63553400",
        "international": "+49 211 63553400",
        "display": "0211 63553400",
        "raw": "4921163553400",
        "anonymous": False,
    }
    assert context["local"]["e164"] == "+4921163553401"
    assert context["user"]["full_name"] == "Max Mustermann"
    assert context["users"] == [context["user"]]
    assert context["headline"] == "Invoice inquiry and plan change"
    assert len(context["key_points"]) == 3
    assert context["topics"] == ["Invoice", "Additional package", "Plan change"]
    assert context["action_items"][0] == "Send plan options to the customer by email."
    assert context["small_talk"][0]["topic"] == "Greeting"
    assert context["transcript"].startswith("Caller: Good day")
    assert context["transcript_chunks"][0] == {
        "speaker": "CALLER",
        "start_ms": 3200,
        "end_ms": 12400,
        "content": context["transcript_chunks"][0]["content"],
    }
    assert context["scenarios"] == []
    assert context["language"] == "en"
    assert context["labels"]["summary"] == "Summary"


def test_context_in_german(report_v1: CallReport) -> None:
    context = build_context(report_v1, language="de-DE")
    assert context["language"] == "de"
    assert context["call"]["direction_label"] == "Eingehender Anruf"
    assert context["call"]["duration_human"] == "1 Min. 23 Sek."
    labels = context["labels"]
    assert labels["summary"] == "Zusammenfassung"
    assert labels["key_points"] == "Kernpunkte"
    assert labels["action_items"] == "Aufgaben"
    assert labels["call_from"] == "Anruf mit"
    assert labels["outbound"] == "Ausgehender Anruf"


def test_context_of_legacy_report(report_legacy: CallReport) -> None:
    context = build_context(report_legacy)
    assert context["call"]["payload_version"] == "legacy"
    assert context["call"]["duration_seconds"] == 300
    assert context["call"]["duration_human"] == "5 min"
    assert context["remote"]["e164"] == "+491751234567"
    assert context["remote"]["national"] == "0175 1234567"
    assert context["local"]["e164"] == "+498912345678"
    assert context["users"] == [] and context["user"] is None
    assert context["call"]["channel"] == {"id": "channel_98765", "name": "Sales"}
    assert context["summary"] == "" and context["action_items"] == []
    assert context["transcript"] == "" and context["transcript_chunks"] == []
    text = render_one(
        "{{ call.direction_label }} - {{ headline }}\n{{ labels.call_from }} {{ remote.display }}"
        "{% if summary %}\n{{ summary }}{% endif %}",
        context,
    )
    assert text == (
        "Inbound call - Customer asked about product availability and pricing\n"
        "Call with 0175 1234567"
    )


def test_outbound_call_swaps_parties(report_v1: CallReport) -> None:
    outbound = dataclasses.replace(report_v1, direction="OUT")
    context = build_context(outbound)
    assert context["call"]["direction_label"] == "Outbound call"
    assert context["remote"]["e164"] == "+4921163553401"
    assert context["local"]["e164"] == "+4921163553400"


def test_anonymous_and_foreign_parties(report_v1: CallReport) -> None:
    anonymous = dataclasses.replace(report_v1, from_number="anonymous")
    context = build_context(anonymous, language="de")
    assert context["remote"]["anonymous"] is True
    assert context["remote"]["e164"] == ""
    assert context["remote"]["display"] == "Unterdrückte Nummer"
    assert context["remote"]["raw"] == "anonymous"

    foreign = dataclasses.replace(report_v1, from_number="4312345678")
    assert build_context(foreign)["remote"]["display"] == "+43 1 2345678"

    internal = dataclasses.replace(report_v1, from_number="12")
    party = build_context(internal)["remote"]
    assert party["e164"] == "" and party["display"] == "12" and party["anonymous"] is False


def test_transcript_from_chunks(report_v1: CallReport) -> None:
    only_chunks = dataclasses.replace(report_v1, transcript="")
    transcript = build_context(only_chunks)["transcript"]
    assert transcript.splitlines()[0].startswith("CALLER: Good day")
    assert len(transcript.splitlines()) == 4


def test_extra_is_merged_but_cannot_replace(report_v1: CallReport) -> None:
    context = build_context(report_v1, extra={"record": {"id": "0031"}})
    assert context["record"] == {"id": "0031"}
    with pytest.raises(ValueError, match="call"):
        build_context(report_v1, extra={"call": {}})


def test_unknown_timezone_and_language(report_v1: CallReport) -> None:
    with pytest.raises(ValueError, match="timezone"):
        build_context(report_v1, timezone="Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="timezone"):
        build_context(report_v1, timezone="../../etc/passwd")
    with pytest.raises(ValueError, match="language"):
        build_context(report_v1, language="fr")


def test_context_reference_matches_context_and_docstring(report_v1: CallReport) -> None:
    reference = context_reference()
    names = [name for name, _ in reference]
    assert len(names) == len(set(names))
    assert all(description for _, description in reference)
    context = build_context(report_v1)
    assert {name for name in names if "." not in name} == set(context)
    for group in ("call", "remote", "local", "labels"):
        documented = {name.split(".", 1)[1] for name in names if name.startswith(group + ".")}
        assert documented == set(context[group]), group
    doc = render_module.__doc__ or ""
    documented_in_doc = set(re.findall(r"^``([a-z_.0-9]+)``$", doc, flags=re.MULTILINE))
    assert documented_in_doc == set(names)


# --- time zones -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("utc", "local", "zone_name"),
    [
        ("2026-03-29T00:59:59+00:00", "2026-03-29 01:59:59", "CET"),
        ("2026-03-29T01:00:00+00:00", "2026-03-29 03:00:00", "CEST"),
        ("2026-10-25T00:30:00+00:00", "2026-10-25 02:30:00", "CEST"),
        ("2026-10-25T01:30:00+00:00", "2026-10-25 02:30:00", "CET"),
        ("2026-12-31T23:30:00+00:00", "2027-01-01 00:30:00", "CET"),
    ],
)
def test_dst_boundaries(utc: str, local: str, zone_name: str, report_v1: CallReport) -> None:
    context = build_context(at(report_v1, utc))
    start = context["call"]["start"]
    assert start.strftime("%Y-%m-%d %H:%M:%S") == local
    assert start.tzname() == zone_name
    # the same instant; == between zones is always False for times in the repeated hour (PEP 495)
    assert start.astimezone(dt.UTC) == dt.datetime.fromisoformat(utc)
    assert context["call"]["date"] == dt.date.fromisoformat(local[:10])
    rendered = render_one("{{ call.start | datetime('%Y-%m-%d %H:%M:%S %Z') }}", context)
    assert rendered == f"{local} {zone_name}"


def test_other_timezone(report_v1: CallReport) -> None:
    context = build_context(report_v1, timezone="America/New_York")
    assert render_one("{{ call.start | datetime('%H:%M %Z') }}", context) == "05:22 EDT"


def test_call_end_without_end_time(report_v1: CallReport) -> None:
    report = dataclasses.replace(report_v1, end_time=None, duration=dt.timedelta(seconds=90))
    call = build_context(report)["call"]
    assert call["end"] - call["start"] == dt.timedelta(seconds=90)
    assert call["end"].tzinfo == call["start"].tzinfo


# --- filters ----------------------------------------------------------------------------------


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


def test_date_and_datetime_filters(report_v1: CallReport) -> None:
    context = build_context(report_v1)
    assert render_one("{{ call.start | date }}", context) == "2026-04-08"
    assert render_one("{{ call.date | date('%d.%m.%Y') }}", context) == "08.04.2026"
    assert render_one("{{ call.start | datetime }}", context) == "2026-04-08 11:22"
    assert render_one("{{ call.end | datetime('%H:%M:%S') }}", context) == "11:24:04"
    # aware datetimes from elsewhere (extra) are shown in the configured timezone
    context = build_context(
        report_v1, extra={"due": dt.datetime(2026, 1, 15, 23, 30, tzinfo=dt.UTC)}
    )
    assert render_one("{{ due | datetime }}", context) == "2026-01-16 00:30"
    assert render_one("{{ '2026-01-15' | date('%d.%m.') }}", context) == "15.01."
    assert render_one("[{{ none | date }}]", {"none": None}) == "[]"


def test_duration_human_filter(report_v1: CallReport) -> None:
    en = build_context(report_v1)
    de = build_context(report_v1, language="de")
    source = "{{ call.duration | duration_human }}"
    assert render_one(source, en) == "1 min 23 s"
    assert render_one(source, de) == "1 Min. 23 Sek."
    assert render_one("{{ 3725 | duration_human }}", en) == "1 h 2 min 5 s"
    assert render_one("{{ 3725 | duration_human }}", de) == "1 Std. 2 Min. 5 Sek."
    assert render_one("{{ 0 | duration_human }}", de) == "0 Sek."
    assert render_one("{{ 3600 | duration_human('en') }}", de) == "1 h"


def test_number_filters(report_v1: CallReport) -> None:
    context = build_context(report_v1)
    assert render_one("{{ remote.raw | e164 }}", context) == "+4921163553400"
    assert render_one("{{ remote.raw | national }}", context) == "0211 63553400"
    assert render_one("{{ '0211 / 635534-00' | e164 }}", context) == "+4921163553400"
    assert render_one("{{ '+491751234567' | national }}", context) == "0175 1234567"
    assert render_one("{{ 'anonymous' | e164 }}", context) == "anonymous"
    assert render_one("[{{ none | national }}]", {"none": None}) == "[]"


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
