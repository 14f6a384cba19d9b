"""Tests for connector.render.check: every template problem found at configuration time."""

from __future__ import annotations

import pytest

from connector.payload import CallReport
from connector.render.check import check_templates
from connector.render.context import build_context
from connector.render.sandbox import (
    TemplateProblem,
    compile_templates,
    render_fields,
)


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
